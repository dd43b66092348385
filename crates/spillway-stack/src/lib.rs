//! The stack file (`spillway.toml`): its model, loading with file:line:column errors,
//! `${...}` references, semantic validation and the JSON schema.
//!
//! Every service reads its configuration from [`model`]; none invents its own.

pub mod attrs;
pub mod diagnostic;
pub mod duration;
pub mod listeners;
pub mod load;
mod locate;
pub mod model;
pub mod resource;
pub mod schema;
pub mod template;
mod validate;

pub use diagnostic::{Diagnostic, LoadError};
pub use duration::Duration;
pub use load::{LoadedStack, STACK_FILE, load, load_str, stack_file};
pub use model::Stack;
pub use resource::{Kind, ResourceId};
pub use template::Template;
pub use validate::{TrustedPrincipal, check_route, parse_cidr, trusted_principal};
