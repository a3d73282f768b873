//! Classification of responses (`ClassifyLayer`, the retry policy): the provider tables on the
//! wire, and properties over any body.

mod properties;
mod wire;
