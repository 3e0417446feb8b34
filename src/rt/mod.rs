//! Runtime helpers shared by the server and loadgen: single-thread wake-ups, a cooperative
//! yield for compio tasks, and a cache prefetch hint.

pub mod notify;
pub mod prefetch;

pub use notify::{Notify, yield_now};
pub use prefetch::prefetch;
