//! Runtime helpers shared by the server and loadgen: single-thread wake-ups, a cooperative
//! yield for compio tasks, and which sub-future woke a task.

pub mod causes;
pub mod notify;

pub use causes::Causes;
pub use notify::{Notify, yield_now};
