//! Runtime helpers shared by the server and loadgen: single-thread wake-ups, a cooperative
//! yield for compio tasks, and turns that pace many tasks woken at once.

pub mod notify;
pub mod turns;

pub use notify::{Notify, yield_now};
pub use turns::Turns;
