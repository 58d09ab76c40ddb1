//! cma-api: the KedaController API (types, defaults, validation, CRD generation). No I/O.

pub mod audit;
pub mod crd;
pub mod document;
pub mod eventing_keda_sh;
pub mod keda_sh;
pub mod kedacontroller;
pub mod labels;
pub mod names;
pub mod quantity;
pub mod rules;
pub mod schema;
pub mod validation;
pub mod yaml;

pub use kedacontroller::*;
pub use validation::{FieldError, Valid, ValidationErrors, validate};
