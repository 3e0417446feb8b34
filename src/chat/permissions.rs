//! Who may do what in a chat: one table of roles × permissions, overridable per namespace.
//! A denial is error 103 naming the permission and the role.

use std::collections::HashMap;

use crate::auth::Role;
use crate::client_protocol::codes::ClientError;

/// Everything a chat user may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Publish,
    React,
    SendDm,
    Mention,
    Warn,
    Mute,
    Kick,
    Ban,
    Unban,
    ReadModerationHistory,
    ChangeRoomSettings,
}

impl Permission {
    pub const ALL: [Permission; 11] = [
        Permission::Publish,
        Permission::React,
        Permission::SendDm,
        Permission::Mention,
        Permission::Warn,
        Permission::Mute,
        Permission::Kick,
        Permission::Ban,
        Permission::Unban,
        Permission::ReadModerationHistory,
        Permission::ChangeRoomSettings,
    ];

    /// The name used in the configuration and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Permission::Publish => "publish",
            Permission::React => "react",
            Permission::SendDm => "send_dm",
            Permission::Mention => "mention",
            Permission::Warn => "warn",
            Permission::Mute => "mute",
            Permission::Kick => "kick",
            Permission::Ban => "ban",
            Permission::Unban => "unban",
            Permission::ReadModerationHistory => "read_moderation_history",
            Permission::ChangeRoomSettings => "change_room_settings",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

fn role_index(role: Role) -> usize {
    match role {
        Role::Guest => 0,
        Role::User => 1,
        Role::Moderator => 2,
        Role::Admin => 3,
    }
}

fn role_name(role: Role) -> &'static str {
    ["guest", "user", "moderator", "admin"][role_index(role)]
}

/// A role → permissions mask, one per role.
type Masks = [u16; 4];

fn mask(perms: &[Permission]) -> u16 {
    perms.iter().fold(0, |m, p| m | p.bit())
}

/// The built-in table: guests read only; users talk; moderators also sanction (not ban) and
/// read moderation history; admins may do everything.
fn defaults() -> Masks {
    use Permission::*;
    let user = mask(&[Publish, React, SendDm, Mention]);
    let moderator = user | mask(&[Warn, Mute, Kick, Unban, ReadModerationHistory]);
    let admin = mask(&Permission::ALL);
    [0, user, moderator, admin]
}

/// Why a permission override was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("chat permissions: unknown role {0:?} (guest, user, moderator, admin)")]
    Role(String),
    #[error("chat permissions: unknown permission {0:?}")]
    Permission(String),
}

/// The table, with per-namespace overrides.
#[derive(Debug, Clone)]
pub struct PermissionTable {
    default: Masks,
    namespaces: HashMap<String, Masks>,
}

impl Default for PermissionTable {
    fn default() -> Self {
        Self {
            default: defaults(),
            namespaces: HashMap::new(),
        }
    }
}

impl PermissionTable {
    /// Replaces what `role` may do in `namespace` with `perms` (names as in the config).
    pub fn set(&mut self, namespace: &str, role: &str, perms: &[String]) -> Result<(), TableError> {
        let i = ["guest", "user", "moderator", "admin"]
            .iter()
            .position(|r| *r == role)
            .ok_or_else(|| TableError::Role(role.to_owned()))?;
        let mut m = 0;
        for p in perms {
            m |= Permission::parse(p)
                .ok_or_else(|| TableError::Permission(p.clone()))?
                .bit();
        }
        let default = self.default;
        self.namespaces
            .entry(namespace.to_owned())
            .or_insert(default)[i] = m;
        Ok(())
    }

    pub fn allows(&self, namespace: &str, role: Role, p: Permission) -> bool {
        let masks = self.namespaces.get(namespace).unwrap_or(&self.default);
        masks[role_index(role)] & p.bit() != 0
    }

    /// `Ok`, or error 103 naming the permission and the role.
    pub fn check(&self, namespace: &str, role: Role, p: Permission) -> Result<(), ClientError> {
        if self.allows(namespace, role, p) {
            Ok(())
        } else {
            Err(ClientError::PERMISSION_DENIED.with_detail(format_args!(
                "{} is not allowed for the {} role here",
                p.name(),
                role_name(role)
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_table() {
        let t = PermissionTable::default();
        let all = |role| {
            Permission::ALL
                .into_iter()
                .filter(|p| t.allows("chat", role, *p))
                .map(Permission::name)
                .collect::<Vec<_>>()
        };
        assert!(all(Role::Guest).is_empty(), "guests read only");
        assert_eq!(all(Role::User), ["publish", "react", "send_dm", "mention"]);
        let m = all(Role::Moderator);
        assert!(m.contains(&"mute") && m.contains(&"kick") && !m.contains(&"ban"));
        assert_eq!(all(Role::Admin).len(), Permission::ALL.len());
        let e = t
            .check("chat", Role::Guest, Permission::Publish)
            .unwrap_err();
        assert_eq!(e.code, 103);
        assert!(
            e.message.contains("publish") && e.message.contains("guest"),
            "{}",
            e.message
        );
    }

    #[test]
    fn per_namespace_overrides() {
        let mut t = PermissionTable::default();
        t.set("lobby", "guest", &["publish".into(), "react".into()])
            .unwrap();
        t.set("announce", "user", &[]).unwrap();
        assert!(t.allows("lobby", Role::Guest, Permission::Publish));
        assert!(
            !t.allows("chat", Role::Guest, Permission::Publish),
            "elsewhere: defaults"
        );
        assert!(!t.allows("announce", Role::User, Permission::Publish));
        assert!(
            t.allows("announce", Role::Admin, Permission::Publish),
            "other roles: defaults"
        );
        assert_eq!(
            t.set("x", "owner", &[]),
            Err(TableError::Role("owner".into()))
        );
        assert_eq!(
            t.set("x", "user", &["fly".into()]),
            Err(TableError::Permission("fly".into()))
        );
    }
}
