//! One module per page.

pub mod account;
pub mod agent;
pub mod agent_sharing;
pub mod agents;
pub mod alerts;
pub mod checks;
pub mod home;
pub mod login;
pub mod not_found;
pub mod running;
pub mod status;
pub mod two_factor;
pub mod users;
