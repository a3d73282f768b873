//! The file store: `<dir>/<fingerprint>.token`, written to a temporary file and renamed over
//! the old one (a reader sees the old record or the new one, never half of one), mode `0600`;
//! `<dir>/<fingerprint>.lock` locked (advisory, `flock`/`LockFileEx` through `fs4`) by the
//! process that fetches, so the processes of one machine fetch once.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;

use super::{Backend, Lease, Release, StoreError, StoreErrorKind};

/// A record file larger than this is not a token record.
const MAX_RECORD: u64 = 64 * 1024;

pub(crate) struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

fn unavailable(what: &str, path: &Path, err: &io::Error) -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        format!("{what} {}: {err}", path.display()),
    )
}

/// Runs blocking file work off the runtime's threads.
fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> BoxFuture<'static, Result<T, StoreError>> {
    Box::pin(async move {
        tokio::task::spawn_blocking(work).await.unwrap_or_else(|_| {
            Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "the file task ended without an answer",
            ))
        })
    })
}

/// Creates the directory, readable by its owner only, when missing.
fn create_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|err| unavailable("cannot create the directory", dir, &err))
}

fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options
}

fn load(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(unavailable("cannot open", path, &err)),
    };
    let metadata = file
        .metadata()
        .map_err(|err| unavailable("cannot inspect", path, &err))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(StoreError::new(
                StoreErrorKind::Permissions,
                format!(
                    "{} has mode {mode:o}: others could have read or written it (0600 expected)",
                    path.display()
                ),
            ));
        }
    }
    if !metadata.is_file() || metadata.len() > MAX_RECORD {
        return Err(StoreError::new(
            StoreErrorKind::Corrupt,
            format!("{} is not a token record file", path.display()),
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_RECORD)
        .read_to_end(&mut bytes)
        .map_err(|err| unavailable("cannot read", path, &err))?;
    Ok(Some(bytes))
}

fn save(dir: &Path, path: &Path, record: &[u8]) -> Result<(), StoreError> {
    create_dir(dir)?;
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("token");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let temp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let write = || -> io::Result<()> {
        let mut file = private(OpenOptions::new().write(true).create_new(true)).open(&temp)?;
        file.write_all(record)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    };
    write().map_err(|err| {
        let _ = fs::remove_file(&temp);
        unavailable("cannot write", path, &err)
    })
}

fn lock(dir: &Path, path: &Path) -> Result<File, StoreError> {
    create_dir(dir)?;
    let file = private(OpenOptions::new().read(true).write(true).create(true))
        .open(path)
        .map_err(|err| unavailable("cannot open the lock file", path, &err))?;
    fs4::FileExt::lock(&file).map_err(|err| unavailable("cannot lock", path, &err))?;
    Ok(file)
}

/// The lock file, locked; closing it unlocks it.
struct FileLease(#[allow(dead_code)] File);

impl Release for FileLease {
    fn release(self: Box<Self>) -> BoxFuture<'static, ()> {
        drop(self);
        Box::pin(async {})
    }
}

impl Backend for FileStore {
    fn load(&self, key: &str) -> BoxFuture<'static, Result<Option<Vec<u8>>, StoreError>> {
        let path = self.dir.join(format!("{key}.token"));
        blocking(move || load(&path))
    }

    fn save(
        &self,
        key: &str,
        record: Vec<u8>,
        _ttl: Option<Duration>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let dir = self.dir.clone();
        let path = self.dir.join(format!("{key}.token"));
        blocking(move || save(&dir, &path, &record))
    }

    fn lease(&self, key: &str, _ttl: Duration) -> BoxFuture<'static, Result<Lease, StoreError>> {
        // Blocks a blocking-pool thread until the lock is ours. Should the flight stop waiting
        // (the wait bound), the task still ends by taking the lock, and drops it at once.
        let dir = self.dir.clone();
        let path = self.dir.join(format!("{key}.lock"));
        let lock = blocking(move || lock(&dir, &path));
        Box::pin(async move {
            let file = lock.await?;
            Ok(Lease::Held(Box::new(FileLease(file))))
        })
    }

    fn describe(&self) -> &'static str {
        "file"
    }
}
