//! Runtime helpers shared by the server and loadgen: single-thread wake-ups and a cooperative
//! yield for compio tasks.

pub mod notify;
pub mod turns;

pub use notify::{Notify, yield_now};
pub use turns::Turns;
