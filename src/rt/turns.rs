//! [`Turns`]: at most `per_pass` turns handed out per pass of this thread's run queue, so that
//! thousands of tasks woken at once (a broadcast's writers) cannot stand between the few that
//! feed them (the reader of the next publication, the cross-core inbox) and the CPU.
//!
//! A task calls [`Turns::take`] before a unit of work. While turns are left it goes at once;
//! otherwise it queues (FIFO, by ticket) and [`Turns::refill`] — a task of its own that yields
//! after each grant, so it runs once per pass of the run queue — hands out the next `per_pass`.
//! Must not: decide what the work is; it only paces it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Poll, Waker};

use super::{Notify, yield_now};

pub struct Turns {
    per_pass: usize,
    left: Cell<usize>,
    /// Tickets below this were granted.
    served: Cell<u64>,
    next_ticket: Cell<u64>,
    /// One entry per waiting task, so bounded by the tasks that can wait (one per connection).
    waiting: RefCell<VecDeque<Waker>>,
    wake_refill: Notify,
}

impl Turns {
    pub fn new(per_pass: usize) -> Self {
        Self {
            per_pass: per_pass.max(1),
            left: Cell::new(per_pass.max(1)),
            served: Cell::new(0),
            next_ticket: Cell::new(0),
            waiting: RefCell::new(VecDeque::new()),
            wake_refill: Notify::default(),
        }
    }

    /// Waits for a turn: at once while the pass has turns left and nobody queues before us.
    pub async fn take(&self) {
        if self.waiting.borrow().is_empty() && self.left.get() > 0 {
            self.left.set(self.left.get() - 1);
            return;
        }
        let ticket = self.next_ticket.get();
        self.next_ticket.set(ticket + 1);
        let mut queued = false;
        poll_fn(|cx| {
            if ticket < self.served.get() {
                return Poll::Ready(());
            }
            if !queued {
                queued = true;
                let mut waiting = self.waiting.borrow_mut();
                waiting.push_back(cx.waker().clone());
                if waiting.len() == 1 {
                    self.wake_refill.notify();
                }
            }
            Poll::Pending
        })
        .await
    }

    /// The refilling task: once per pass of the run queue while anyone waits, the next
    /// `per_pass` waiters get their turn (the rest of the pass's turns go to later callers).
    pub async fn refill(&self) {
        loop {
            self.wake_refill.notified().await;
            loop {
                let granted = {
                    let mut waiting = self.waiting.borrow_mut();
                    let n = waiting.len().min(self.per_pass);
                    for w in waiting.drain(..n) {
                        w.wake();
                    }
                    n
                };
                self.served.set(self.served.get() + granted as u64);
                self.left.set(self.per_pass - granted);
                if self.waiting.borrow().is_empty() {
                    break;
                }
                yield_now().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// Runs `tasks` takers and one feeder (which yields in a loop, like the reader of the next
    /// publication) on one runtime; returns the order the takers got their turns in, each with
    /// how many times the feeder had run by then.
    fn run(per_pass: usize, tasks: usize) -> Vec<(usize, usize)> {
        let rt = compio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let turns = Rc::new(Turns::new(per_pass));
            let feeder_runs = Rc::new(Cell::new(0usize));
            let order = Rc::new(RefCell::new(Vec::new()));
            let t = turns.clone();
            compio::runtime::spawn(async move { t.refill().await }).detach();
            let f = feeder_runs.clone();
            let feeder = compio::runtime::spawn(async move {
                for _ in 0..10_000 {
                    f.set(f.get() + 1);
                    yield_now().await;
                }
            });
            let mut handles = Vec::new();
            for i in 0..tasks {
                let (t, o, f) = (turns.clone(), order.clone(), feeder_runs.clone());
                handles.push(compio::runtime::spawn(async move {
                    t.take().await;
                    o.borrow_mut().push((i, f.get()));
                }));
            }
            for h in handles {
                let _ = h.await;
            }
            drop(feeder);
            Rc::try_unwrap(order).expect("tasks done").into_inner()
        })
    }

    #[test]
    fn every_taker_gets_a_turn_in_order() {
        let order = run(3, 20);
        let ids: Vec<usize> = order.iter().map(|&(i, _)| i).collect();
        assert_eq!(ids, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn at_most_per_pass_turns_between_runs_of_another_task() {
        let order = run(4, 40);
        // Takers that saw the same feeder count ran in the same pass: never more than 4.
        let mut per_pass = std::collections::HashMap::<usize, usize>::new();
        for &(_, feeder) in &order {
            *per_pass.entry(feeder).or_default() += 1;
        }
        assert!(per_pass.values().all(|&n| n <= 4), "{per_pass:?}");
        assert!(
            per_pass.len() >= 10,
            "40 turns need at least 10 passes: {per_pass:?}"
        );
    }

    #[test]
    fn without_contention_a_turn_is_immediate() {
        let order = run(1000, 50);
        assert!(order.iter().all(|&(_, feeder)| feeder <= 1), "{order:?}");
    }
}
