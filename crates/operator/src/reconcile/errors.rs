//! API errors as a person reads them (see [`crate::errors`]): the reconcile steps name them through this
//! module.

pub use crate::errors::{chain, describe};
