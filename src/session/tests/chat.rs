//! Chat through the session, without sockets: the fake host records what would be published
//! and what every worker's sessions would be told.

use super::*;
use crate::api::SessionCommand;

const CHAT: &str = r#"
[[channel.namespaces]]
name = "room"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
allow_presence_for_subscriber = true
allow_history_for_subscriber = true
history_size = 100
history_ttl = "300s"
presence = true
join_leave = true
[[channel.namespaces]]
name = "dm"
allow_user_limited_channels = true
allow_publish_for_client = true
history_size = 100
history_ttl = "300s"
presence = true
[chat]
namespaces = ["room", "dm"]
dm_namespace = "dm"
max_text_len = 50
[chat.automod]
flood_messages = 5
flood_interval = "10s"
"#;

fn with_roles(
    env: &Arc<SessionEnv>,
    host: &mut FakeHost,
    user: &str,
    roles: &[&str],
    now: Now,
) -> (ClientSession, String) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    let id = format!("k{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let mut s = ClientSession::new(env.clone(), id, None, now);
    let t = token(json!({"sub": user, "exp": now.unix + 3600, "roles": roles}));
    s.handle_frame(
        format!(r#"{{"id":1,"connect":{{"token":"{t}"}}}}"#).as_bytes(),
        now,
        host,
    );
    let reply = out(&mut s);
    (s, reply)
}

fn chatter(
    env: &Arc<SessionEnv>,
    host: &mut FakeHost,
    user: &str,
    roles: &[&str],
) -> ClientSession {
    let (mut s, reply) = with_roles(env, host, user, roles, t0());
    assert!(s.is_connected(), "{reply}");
    s.handle_frame(
        br#"{"id":2,"subscribe":{"channel":"room:lobby"}}"#,
        t0(),
        host,
    );
    let r = out(&mut s);
    assert!(r.starts_with(r#"{"id":2,"subscribe":{"#), "{r}");
    s
}

fn send(s: &mut ClientSession, host: &mut FakeHost, cmd: serde_json::Value, now: Now) -> String {
    s.handle_frame(cmd.to_string().as_bytes(), now, host);
    out(s)
}

fn say(s: &mut ClientSession, host: &mut FakeHost, text: &str, now: Now) -> String {
    send(
        s,
        host,
        json!({"id": 10, "publish": {"channel": "room:lobby", "data": {"type": "message", "text": text}}}),
        now,
    )
}

fn rpc(
    s: &mut ClientSession,
    host: &mut FakeHost,
    method: &str,
    data: serde_json::Value,
    now: Now,
) -> String {
    send(
        s,
        host,
        json!({"id": 11, "rpc": {"method": method, "data": data}}),
        now,
    )
}

fn published_to(host: &FakeHost, channel: &str) -> Vec<String> {
    host.published
        .iter()
        .filter(|(c, _, _)| c == channel)
        .map(|(_, d, _)| d.clone())
        .collect()
}

#[test]
fn messages_are_validated_and_normalized_guests_read_only() {
    let env = env_with(CHAT);
    let mut host = FakeHost::default();
    let mut alice = chatter(&env, &mut host, "alice", &[]);
    assert_eq!(
        say(&mut alice, &mut host, "  hello  ", t0()),
        r#"{"id":10,"publish":{}}"#
    );
    assert_eq!(
        published_to(&host, "room:lobby"),
        [r#"{"text":"hello","type":"message"}"#]
    );
    let r = send(
        &mut alice,
        &mut host,
        json!({"id": 10, "publish": {"channel": "room:lobby", "data": {"t": 1}}}),
        t0(),
    );
    assert!(r.contains(r#""code":107"#), "{r}");
    let r = say(&mut alice, &mut host, &"x".repeat(51), t0());
    assert!(r.contains("51 characters"), "{r}");

    let mut guest = chatter(&env, &mut host, "gus", &["guest"]);
    let r = say(&mut guest, &mut host, "hi", t0());
    assert!(r.contains(r#""code":103"#) && r.contains("publish"), "{r}");
    let r = rpc(
        &mut guest,
        &mut host,
        "reaction.add",
        json!({"channel": "room:lobby", "offset": 1, "emoji": "👍"}),
        t0(),
    );
    assert!(r.contains(r#""code":103"#) && r.contains("react"), "{r}");
}

#[test]
fn a_mute_refuses_publishes_until_it_ends_and_needs_a_moderator() {
    let env = env_with(CHAT);
    let mut host = FakeHost::default();
    let mut bob = chatter(&env, &mut host, "bob", &[]);
    let mut mia = chatter(&env, &mut host, "mia", &["moderator"]);
    let r = rpc(
        &mut bob,
        &mut host,
        "mod.mute",
        json!({"user": "mia", "global": true}),
        t0(),
    );
    assert!(
        r.contains(r#""code":103"#) && r.contains("mute"),
        "a user may not mute: {r}"
    );
    let r = rpc(
        &mut mia,
        &mut host,
        "mod.mute",
        json!({"user": "bob", "channel": "room:lobby", "duration": "1m", "reason": "spam"}),
        t0(),
    );
    assert!(r.contains(r#""action":"mute""#), "{r}");
    let r = say(&mut bob, &mut host, "let me talk", later(t0(), 30));
    assert!(
        r.contains(r#""code":103"#) && r.contains("muted until") && r.contains("spam"),
        "{r}"
    );
    assert!(
        published_to(&host, "personal:#bob")
            .iter()
            .any(|p| p.contains(r#""action":"mute""#)),
        "bob is told"
    );
    assert_eq!(
        say(&mut bob, &mut host, "back", later(t0(), 61)),
        r#"{"id":10,"publish":{}}"#
    );
    let r = rpc(
        &mut mia,
        &mut host,
        "mod.mute",
        json!({"user": "bob"}),
        t0(),
    );
    assert!(r.contains("name a channel or global"), "{r}");
    let r = rpc(
        &mut mia,
        &mut host,
        "mod.history",
        json!({"user": "bob"}),
        t0(),
    );
    assert!(
        r.contains(r#""by":"mia""#) && r.contains(r#""scope":"room:lobby""#),
        "{r}"
    );
    let r = rpc(
        &mut bob,
        &mut host,
        "mod.history",
        json!({"user": "bob"}),
        t0(),
    );
    assert!(r.contains(r#""code":103"#), "{r}");
}

#[test]
fn kick_and_ban_reach_every_worker_and_a_ban_refuses_connects() {
    let env = env_with(CHAT);
    let mut host = FakeHost::default();
    let _eve = chatter(&env, &mut host, "eve", &[]);
    let mut ada = chatter(&env, &mut host, "ada", &["admin"]);
    let mut mia = chatter(&env, &mut host, "mia", &["moderator"]);
    let r = rpc(
        &mut mia,
        &mut host,
        "mod.ban",
        json!({"user": "eve", "global": true}),
        t0(),
    );
    assert!(
        r.contains(r#""code":103"#) && r.contains("ban"),
        "moderators may not ban by default: {r}"
    );
    rpc(
        &mut mia,
        &mut host,
        "mod.kick",
        json!({"user": "eve", "global": true, "reason": "rude"}),
        t0(),
    );
    let r = rpc(
        &mut ada,
        &mut host,
        "mod.ban",
        json!({"user": "eve", "global": true, "duration": 3600, "reason": "spam"}),
        t0(),
    );
    assert!(r.contains(r#""action":"ban""#), "{r}");
    let closes: Vec<(u16, String)> = host
        .commands
        .iter()
        .filter_map(|c| match c {
            SessionCommand::Disconnect(s, d) if s.user == "eve" => {
                Some((d.code, d.reason.to_string()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(closes.len(), 2, "{closes:?}");
    assert_eq!(closes[0].0, 4500);
    assert!(closes[0].1.contains("rude"), "{closes:?}");
    assert_eq!(closes[1].0, 4501);
    assert!(
        closes[1].1.contains("until") && closes[1].1.contains("spam"),
        "{closes:?}"
    );
    let (s, _) = with_roles(&env, &mut host, "eve", &[], later(t0(), 60));
    assert_eq!(
        s.disconnect().map(|d| d.code),
        Some(4501),
        "refused while banned"
    );
    let (s, _) = with_roles(&env, &mut host, "eve", &[], later(t0(), 3601));
    assert!(s.is_connected(), "the ban ended");
    // A room ban: the user leaves the room and may not subscribe again.
    rpc(
        &mut ada,
        &mut host,
        "mod.ban",
        json!({"user": "bob", "channel": "room:lobby"}),
        t0(),
    );
    assert!(
        matches!(host.commands.last(), Some(SessionCommand::Unsubscribe(s, c)) if s.user == "bob" && c == "room:lobby")
    );
    let (mut bob, _) = with_roles(&env, &mut host, "bob", &[], t0());
    let r = send(
        &mut bob,
        &mut host,
        json!({"id": 2, "subscribe": {"channel": "room:lobby"}}),
        t0(),
    );
    assert!(
        r.contains(r#""code":103"#) && r.contains("banned from room:lobby"),
        "{r}"
    );
    assert!(
        rpc(
            &mut ada,
            &mut host,
            "mod.unban",
            json!({"user": "bob", "channel": "room:lobby"}),
            t0()
        )
        .contains("unban")
    );
    let r = send(
        &mut bob,
        &mut host,
        json!({"id": 3, "subscribe": {"channel": "room:lobby"}}),
        t0(),
    );
    assert!(r.starts_with(r#"{"id":3,"subscribe""#), "{r}");
    let r = rpc(
        &mut mia,
        &mut host,
        "mod.kick",
        json!({"user": "ada", "global": true}),
        t0(),
    );
    assert!(
        r.contains(r#""code":103"#) && r.contains("as high as yours"),
        "{r}"
    );
}

#[test]
fn mentions_reach_those_who_may_read_and_dms_notify_once() {
    let env = env_with(CHAT);
    let mut host = FakeHost::default();
    let mut alice = chatter(&env, &mut host, "alice", &[]);
    assert_eq!(
        say(&mut alice, &mut host, "hi @bob and @alice, @carol", t0()),
        r#"{"id":10,"publish":{}}"#
    );
    let bob = published_to(&host, "personal:#bob");
    assert_eq!(bob.len(), 1, "{bob:?}");
    assert!(
        bob[0].contains(r#""type":"mention""#) && bob[0].contains(r#""offset":1"#),
        "{bob:?}"
    );
    assert!(
        published_to(&host, "personal:#alice").is_empty(),
        "not yourself"
    );
    // In a DM between alice and bob, carol is mentioned but may not read: no notification.
    let r = rpc(
        &mut alice,
        &mut host,
        "dm.open",
        json!({"user": "bob"}),
        t0(),
    );
    assert!(r.contains(r##""channel":"dm:#alice,bob""##), "{r}");
    let dm = json!({"id": 12, "publish": {"channel": "dm:#alice,bob", "data": {"type": "message", "text": "psst @carol"}}});
    assert_eq!(
        send(&mut alice, &mut host, dm.clone(), t0()),
        r#"{"id":12,"publish":{}}"#
    );
    assert_eq!(
        published_to(&host, "personal:#carol").len(),
        1,
        "only the room mention"
    );
    let bob = published_to(&host, "personal:#bob");
    assert_eq!(bob.len(), 2);
    assert!(bob[1].contains(r#""type":"dm""#), "{bob:?}");
    send(&mut alice, &mut host, dm, t0());
    assert_eq!(
        published_to(&host, "personal:#bob").len(),
        2,
        "notified once"
    );
    let mut carol = chatter(&env, &mut host, "carol", &[]);
    let r = send(
        &mut carol,
        &mut host,
        json!({"id": 5, "subscribe": {"channel": "dm:#alice,bob"}}),
        t0(),
    );
    assert!(r.contains(r#""code":103"#), "a third user: {r}");
    let r = send(
        &mut carol,
        &mut host,
        json!({"id": 6, "publish": {"channel": "dm:#alice,bob", "data": {"type": "message", "text": "hi"}}}),
        t0(),
    );
    assert!(r.contains(r#""code":103"#), "{r}");
}

#[test]
fn reactions_count_once_per_user_and_edits_are_the_authors() {
    let env = env_with(CHAT);
    let mut host = FakeHost::default();
    let mut alice = chatter(&env, &mut host, "alice", &[]);
    let mut bob = chatter(&env, &mut host, "bob", &[]);
    say(&mut alice, &mut host, "vote", t0());
    let add = json!({"channel": "room:lobby", "offset": 1, "emoji": "👍"});
    assert!(
        rpc(&mut bob, &mut host, "reaction.add", add.clone(), t0())
            .contains(r#""changed":true,"count":1"#)
    );
    assert!(
        rpc(&mut bob, &mut host, "reaction.add", add.clone(), t0())
            .contains(r#""changed":false,"count":1"#)
    );
    assert!(rpc(&mut alice, &mut host, "reaction.add", add.clone(), t0()).contains(r#""count":2"#));
    let r = rpc(
        &mut bob,
        &mut host,
        "reaction.add",
        json!({"channel": "room:lobby", "offset": 9, "emoji": "👍"}),
        t0(),
    );
    assert!(r.contains("no chat message at offset 9"), "{r}");
    let reactions: Vec<String> = published_to(&host, "room:lobby")
        .into_iter()
        .filter(|p| p.contains("reaction"))
        .collect();
    assert_eq!(reactions.len(), 2, "one event per change: {reactions:?}");
    let r = rpc(
        &mut bob,
        &mut host,
        "reaction.list",
        json!({"channel": "room:lobby", "offsets": [1, 2]}),
        t0(),
    );
    assert_eq!(
        r,
        r#"{"id":11,"rpc":{"data":{"reactions":{"1":{"counts":{"👍":2},"mine":["👍"]}}}}}"#
    );
    assert!(rpc(&mut bob, &mut host, "reaction.remove", add, t0()).contains(r#""count":1"#));

    let edit = |offset: u64| json!({"id": 13, "publish": {"channel": "room:lobby", "data": {"type": "edit", "offset": offset, "text": "changed"}}});
    let r = send(&mut bob, &mut host, edit(1), t0());
    assert!(r.contains("only the author or a moderator"), "{r}");
    assert_eq!(
        send(&mut alice, &mut host, edit(1), t0()),
        r#"{"id":13,"publish":{}}"#
    );
    let r = send(&mut alice, &mut host, edit(2), t0());
    assert!(
        r.contains("no chat message at offset 2"),
        "a reaction is not editable: {r}"
    );
    let mut mia = chatter(&env, &mut host, "mia", &["moderator"]);
    let del = json!({"id": 14, "publish": {"channel": "room:lobby", "data": {"type": "delete", "offset": 1}}});
    assert_eq!(
        send(&mut mia, &mut host, del, t0()),
        r#"{"id":14,"publish":{}}"#
    );
}

#[test]
fn auto_moderation_warns_then_mutes() {
    let env = env_with(CHAT);
    let mut host = FakeHost::default();
    let mut bob = chatter(&env, &mut host, "bob", &[]);
    let mut refused = Vec::new();
    for i in 0..14 {
        let r = say(&mut bob, &mut host, &format!("message {i}"), t0());
        if r.contains("error") {
            refused.push(r);
        }
    }
    assert!(
        refused[0].contains("flood") && refused[0].contains("warning"),
        "{refused:?}"
    );
    assert!(refused[1].contains("muted for 60 s"), "{refused:?}");
    let history = env.chat.lock().moderation.history("bob");
    assert_eq!(history[0].by, "automod");
    let told = published_to(&host, "personal:#bob");
    assert!(
        told.iter().any(|p| p.contains(r#""by":"automod""#)),
        "{told:?}"
    );
}

#[test]
fn status_is_in_presence_and_invisible_users_are_absent() {
    let env = env_with(CHAT);
    let mut host = FakeHost::default();
    let mut alice = chatter(&env, &mut host, "alice", &[]);
    let mut bob = chatter(&env, &mut host, "bob", &[]);
    let r = rpc(
        &mut alice,
        &mut host,
        "status.set",
        json!({"status": "away"}),
        t0(),
    );
    assert!(r.contains(r#""status":"away""#), "{r}");
    assert!(
        matches!(host.commands.last(), Some(SessionCommand::Status(s, crate::chat::Status::Away)) if s.user == "alice" && s.except.len() == 1)
    );
    let r = send(
        &mut bob,
        &mut host,
        json!({"id": 4, "presence": {"channel": "room:lobby"}}),
        t0(),
    );
    assert!(r.contains(r#""conn_info":{"status":"away"}"#), "{r}");
    rpc(
        &mut alice,
        &mut host,
        "status.set",
        json!({"status": "invisible"}),
        t0(),
    );
    let r = send(
        &mut bob,
        &mut host,
        json!({"id": 5, "presence": {"channel": "room:lobby"}}),
        t0(),
    );
    assert!(!r.contains("alice"), "{r}");
    let r = rpc(
        &mut alice,
        &mut host,
        "status.set",
        json!({"status": "asleep"}),
        t0(),
    );
    assert!(r.contains(r#""code":107"#), "{r}");
    // A new connection of alice starts invisible too.
    let alice2 = chatter(&env, &mut host, "alice", &[]);
    let r = send(
        &mut bob,
        &mut host,
        json!({"id": 6, "presence": {"channel": "room:lobby"}}),
        t0(),
    );
    assert!(!r.contains("alice"), "{r}");
    drop(alice2);
}

#[test]
fn chat_info_answers_with_chat_off_too() {
    let mut host = FakeHost::default();
    let off = env_with("");
    let (mut s, _) = with_roles(&off, &mut host, "alice", &[], t0());
    let r = rpc(&mut s, &mut host, "chat.info", json!({}), t0());
    assert!(
        r.contains(r#""chat":false"#) && r.contains(r#""user":"alice""#),
        "{r}"
    );
    let r = rpc(&mut s, &mut host, "dm.open", json!({"user": "bob"}), t0());
    assert!(
        r.contains(r#""code":104"#),
        "chat methods are unknown with chat off: {r}"
    );
    let on = env_with(CHAT);
    let mut m = chatter(&on, &mut host, "mia", &["moderator"]);
    let r = rpc(&mut m, &mut host, "chat.info", json!({}), t0());
    assert!(
        r.contains(r#""chat":true"#)
            && r.contains(r#""moderator":true"#)
            && r.contains(r#""dm":true"#),
        "{r}"
    );
}
