//! A TCP proxy that can go silent: connections stay open, but nothing is forwarded and new
//! ones are held, as a database behind a dead network link or a hung server looks.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct SilentProxy {
    address: SocketAddr,
    silent: watch::Sender<bool>,
}

impl SilentProxy {
    /// A proxy to `target` on a free loopback port, forwarding.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (silent, watch) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let watch = watch.clone();
                tokio::spawn(async move {
                    let _ = watch.clone().wait_for(|silent| !silent).await;
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(forward(client_read, server_write, watch.clone()));
                    forward(server_read, client_write, watch).await;
                });
            }
        });
        Self { address, silent }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops forwarding (or starts again).
    pub fn set_silent(&self, silent: bool) {
        self.silent.send_replace(silent);
    }
}

/// Copies `from` to `to`, holding each chunk while the proxy is silent.
async fn forward(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    mut silent: watch::Receiver<bool>,
) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if silent.wait_for(|silent| !silent).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
