//! cma-api: the KedaController API (types, defaults, validation, CRD generation), the names and input
//! budgets both binaries share. No I/O.

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
pub mod terminal;
pub mod validation;
pub mod yaml;

pub use kedacontroller::*;
pub use validation::{FieldError, Valid, ValidationErrors, validate};
