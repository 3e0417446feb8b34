//! Rooms: which connections hear a message, and which workers need a copy of it.
//!
//! - [`RoomDirectory`] (one per server, shared): room name → bit mask of the workers that have
//!   at least one member there. Touched only when a worker gets its first member of a room or
//!   loses its last one — never per message. Bounded by `max_rooms`.
//! - [`LocalRooms`] (one per worker, not shared): room name → that worker's members, plus the
//!   room's worker mask (an `Arc<AtomicU64>` read without a lock on every broadcast).
//!
//! Pure data structures: no I/O, no tasks.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use slab::Slab;

use super::inbox::Lost;

/// Workers are tracked in a 64-bit mask.
pub const MAX_WORKERS: usize = 64;
/// Longest room name.
pub const MAX_ROOM_NAME: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error("room names are 1-{MAX_ROOM_NAME} characters of A-Z a-z 0-9 . _ ~ - (path {0:?})")]
    BadName(String),
    #[error("the server already has {0} rooms, its limit")]
    TooManyRooms(usize),
}

/// The room named by a request path: `/chat` → `chat`. Only unreserved URL characters.
pub fn room_from_path(path: &str) -> Result<&str, RoomError> {
    let name = path.strip_prefix('/').unwrap_or(path);
    let ok = !name.is_empty()
        && name.len() <= MAX_ROOM_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'));
    if ok {
        Ok(name)
    } else {
        Err(RoomError::BadName(path.to_owned()))
    }
}

/// Server-wide: which workers have members in which rooms.
pub struct RoomDirectory {
    rooms: Mutex<HashMap<Arc<str>, Arc<AtomicU64>>>,
    max_rooms: usize,
    /// The number of rooms, readable without the lock (metrics).
    count: AtomicU64,
}

impl RoomDirectory {
    pub fn new(max_rooms: usize) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            max_rooms,
            count: AtomicU64::new(0),
        }
    }

    /// Worker `w` got its first member of `name`.
    fn enter(&self, name: &str, w: usize) -> Result<(Arc<str>, Arc<AtomicU64>), RoomError> {
        let mut rooms = self.rooms.lock().expect("room directory poisoned");
        if let Some((k, mask)) = rooms.get_key_value(name) {
            mask.fetch_or(1 << w, Ordering::AcqRel);
            return Ok((k.clone(), mask.clone()));
        }
        if rooms.len() >= self.max_rooms {
            return Err(RoomError::TooManyRooms(self.max_rooms));
        }
        let key: Arc<str> = name.into();
        let mask = Arc::new(AtomicU64::new(1 << w));
        rooms.insert(key.clone(), mask.clone());
        self.count.store(rooms.len() as u64, Ordering::Relaxed);
        Ok((key, mask))
    }

    /// Worker `w` lost its last member of `name`; the room disappears with its last worker.
    fn exit(&self, name: &str, w: usize) {
        let mut rooms = self.rooms.lock().expect("room directory poisoned");
        if let Some(mask) = rooms.get(name)
            && mask.fetch_and(!(1 << w), Ordering::AcqRel) & !(1 << w) == 0
        {
            rooms.remove(name);
            self.count.store(rooms.len() as u64, Ordering::Relaxed);
        }
    }

    /// Rooms with members, without taking the lock.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Calls `f` with the room's name and worker mask while holding the directory's lock, so
    /// that deliveries pushed inside `f` enter the inboxes in one order per room. Not called
    /// when nobody is in the room.
    pub fn with_workers(&self, name: &str, f: impl FnOnce(&Arc<str>, u64)) {
        let rooms = self.rooms.lock().expect("room directory poisoned");
        if let Some((k, mask)) = rooms.get_key_value(name) {
            f(k, mask.load(Ordering::Acquire));
        }
    }

    pub fn len(&self) -> usize {
        self.rooms.lock().expect("room directory poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A member's position in a channel's stream: not tracked (no history, raw rooms).
pub const UNPOSITIONED: u64 = u64::MAX;
/// A member that missed a publication: nothing more is delivered until it leaves.
pub const GAPPED: u64 = u64::MAX - 1;

/// One member of a room or channel on this worker.
pub struct Member {
    /// The connection (key of the worker's connection slab).
    pub conn: usize,
    /// The last offset delivered ([`UNPOSITIONED`], [`GAPPED`]).
    pub last: Cell<u64>,
}

/// What a positioned member gets of a publication at some offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Send it (and the member's position moves to it).
    Deliver,
    /// Already had it (recovery overlap), or the member is gapped: send nothing.
    Skip,
    /// An offset was missed: the member is now gapped and must be told (insufficient state).
    Gap { expected: u64 },
}

impl Member {
    /// Decides a channel publication at `offset` (0: not positioned, e.g. join/leave) for this
    /// member, moving its position. The order rule makes every worker see offsets ascending,
    /// so a jump can only mean a dropped delivery.
    pub fn admit(&self, offset: u64) -> Admit {
        let last = self.last.get();
        if offset == 0 || last == UNPOSITIONED {
            return Admit::Deliver;
        }
        if last == GAPPED || offset <= last {
            return Admit::Skip;
        }
        if offset > last + 1 {
            self.last.set(GAPPED);
            return Admit::Gap { expected: last + 1 };
        }
        self.last.set(offset);
        Admit::Deliver
    }

    /// The publication at `offset` was dropped before reaching this member's worker: true
    /// (and the member is now gapped) when the member needed it.
    pub fn lost(&self, offset: u64) -> bool {
        let last = self.last.get();
        let missed = last != UNPOSITIONED && last != GAPPED && last < offset;
        if missed {
            self.last.set(GAPPED);
        }
        missed
    }
}

/// One worker's members of one room.
pub struct LocalRoom {
    pub name: Arc<str>,
    pub members: Slab<Member>,
    /// Bit `w` set: worker `w` has members here.
    pub workers: Arc<AtomicU64>,
}

/// A connection's place in a room, needed to leave it.
#[derive(Debug, Clone)]
pub struct Membership {
    pub room: Arc<str>,
    key: usize,
}

/// One worker's rooms.
#[derive(Default)]
pub struct LocalRooms {
    rooms: HashMap<Arc<str>, LocalRoom>,
}

impl LocalRooms {
    pub fn join(
        &mut self,
        dir: &RoomDirectory,
        worker: usize,
        name: &str,
        conn: usize,
    ) -> Result<Membership, RoomError> {
        if !self.rooms.contains_key(name) {
            let (name, workers) = dir.enter(name, worker)?;
            self.rooms.insert(
                name.clone(),
                LocalRoom {
                    name,
                    members: Slab::new(),
                    workers,
                },
            );
        }
        let room = self.rooms.get_mut(name).expect("inserted above");
        let key = room.members.insert(Member {
            conn,
            last: Cell::new(UNPOSITIONED),
        });
        Ok(Membership {
            room: room.name.clone(),
            key,
        })
    }

    pub fn leave(&mut self, dir: &RoomDirectory, worker: usize, m: &Membership) {
        let Some(room) = self.rooms.get_mut(&m.room) else {
            return;
        };
        room.members.try_remove(m.key);
        if room.members.is_empty() {
            self.rooms.remove(&m.room);
            dir.exit(&m.room, worker);
        }
    }

    /// Positions a member: from now on only offsets after `offset` are delivered to it.
    pub fn set_position(&self, m: &Membership, offset: u64) {
        if let Some(member) = self.rooms.get(&m.room).and_then(|r| r.members.get(m.key)) {
            member.last.set(offset);
        }
    }

    pub fn get(&self, name: &str) -> Option<&LocalRoom> {
        self.rooms.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &LocalRoom> {
        self.rooms.values()
    }

    /// Applies what this worker's inbox dropped: calls `gapped(channel, conn)` for each member
    /// that needed a lost publication (now gapped). With `overflow`, every positioned member
    /// of every channel is treated as having lost one.
    pub fn apply_lost(&self, lost: &Lost, mut gapped: impl FnMut(&Arc<str>, usize)) {
        let mut check = |room: &LocalRoom, offset: u64| {
            for (_, m) in room.members.iter() {
                if m.lost(offset) {
                    gapped(&room.name, m.conn);
                }
            }
        };
        if lost.overflow {
            for room in self.rooms.values() {
                check(room, GAPPED - 1);
            }
        } else {
            for (name, &offset) in &lost.channels {
                if let Some(room) = self.rooms.get(name) {
                    check(room, offset);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_from_paths() {
        assert_eq!(room_from_path("/chat"), Ok("chat"));
        assert_eq!(room_from_path("/a.b_c~d-9"), Ok("a.b_c~d-9"));
        for bad in [
            "/",
            "/a/b",
            "/sp ace",
            "/%41",
            &format!("/{}", "x".repeat(65)),
        ] {
            assert!(
                matches!(room_from_path(bad), Err(RoomError::BadName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn worker_masks_follow_first_join_and_last_leave() {
        let dir = RoomDirectory::new(10);
        let (mut w0, mut w1) = (LocalRooms::default(), LocalRooms::default());
        let a = w0.join(&dir, 0, "r", 1).unwrap();
        let b = w0.join(&dir, 0, "r", 2).unwrap();
        let c = w1.join(&dir, 1, "r", 7).unwrap();
        let mask = w0.get("r").unwrap().workers.clone();
        assert_eq!(mask.load(Ordering::Acquire), 0b11);
        assert_eq!(w0.get("r").unwrap().members.len(), 2);
        w0.leave(&dir, 0, &a);
        assert_eq!(
            mask.load(Ordering::Acquire),
            0b11,
            "worker 0 still has a member"
        );
        w0.leave(&dir, 0, &b);
        assert_eq!(mask.load(Ordering::Acquire), 0b10);
        assert!(w0.get("r").is_none());
        assert_eq!(dir.len(), 1);
        w1.leave(&dir, 1, &c);
        assert!(dir.is_empty(), "room gone with its last member");
    }

    #[test]
    fn positions_deliver_skip_and_gap() {
        let m = Member {
            conn: 0,
            last: Cell::new(UNPOSITIONED),
        };
        assert_eq!(m.admit(7), Admit::Deliver, "unpositioned: everything");
        m.last.set(5);
        assert_eq!(m.admit(0), Admit::Deliver, "join/leave carry no offset");
        assert_eq!(m.admit(4), Admit::Skip);
        assert_eq!(m.admit(5), Admit::Skip);
        assert_eq!(m.admit(6), Admit::Deliver);
        assert_eq!(m.admit(8), Admit::Gap { expected: 7 });
        assert_eq!(m.last.get(), GAPPED);
        assert_eq!(m.admit(9), Admit::Skip, "nothing more once gapped");
        m.last.set(5);
        assert!(!m.lost(5), "had it");
        assert!(!m.lost(3));
        assert!(m.lost(6));
        assert_eq!(m.last.get(), GAPPED);
        assert!(!m.lost(7), "told once");
        m.last.set(UNPOSITIONED);
        assert!(!m.lost(1), "unpositioned members are not tracked");
    }

    #[test]
    fn room_count_is_bounded() {
        let dir = RoomDirectory::new(2);
        let mut w = LocalRooms::default();
        w.join(&dir, 0, "a", 1).unwrap();
        w.join(&dir, 0, "b", 2).unwrap();
        assert_eq!(
            w.join(&dir, 0, "c", 3).unwrap_err(),
            RoomError::TooManyRooms(2)
        );
        assert!(w.join(&dir, 0, "a", 4).is_ok(), "existing rooms still open");
    }
}
