//! Azure built-in roles, shared with the sandbox (which enforces their permissions).

pub use wiform_sandbox::builtin_roles::*;
