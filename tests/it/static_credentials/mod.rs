//! Static credentials (`Credential`, `AuthLayer`): each provider's preset on the wire, and hot
//! rotation under load.

mod presets;
mod rotation;
