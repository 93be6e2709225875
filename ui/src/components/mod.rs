//! Building blocks shared by pages.

pub mod agent_card;
pub mod chart;
pub mod common;
pub mod copy;
pub mod layout;
pub mod modal;
pub mod theme;
pub mod token_panel;
