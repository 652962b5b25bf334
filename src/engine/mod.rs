//! The engine: observe live state, diff it against the graph, plan. Providers do the IO behind
//! small traits; the plan is data.

pub mod apply;
pub mod diff;
pub mod drift;
pub mod observe;
pub mod plan;
pub mod records;
pub mod verify;
