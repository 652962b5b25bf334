//! Azure built-in roles: the table wiform shares with its sandbox (`wiform-builtin-roles`).

pub use wiform_builtin_roles::*;
