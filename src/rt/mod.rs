//! Runtime helpers shared by the server and loadgen: single-thread wake-ups, a cooperative
//! yield for compio tasks, turns that pace many tasks woken at once, and a cache prefetch hint.

pub mod notify;
pub mod prefetch;
pub mod turns;

pub use notify::{Notify, yield_now};
pub use prefetch::prefetch;
pub use turns::Turns;
