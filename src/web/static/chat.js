// ringcast's chat page: a small Centrifugo client protocol v2 (JSON) client and the chat on
// top of it (PROTOCOL.md, "Chat"). Every text from the server is shown with textContent:
// messages are text, never HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const EMOJI = ["👍", "❤️", "😂"];

const state = {
  ws: null,
  nextId: 1,
  pending: new Map(), // id → {resolve, reject}
  user: "",
  role: "guest",
  moderator: false,
  room: null, // the channel shown
  joined: new Map(), // channel → {messages: Map(offset → element)}
  presence: new Map(), // client → info (current room)
  personal: null,
};

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function showError(msg) {
  $("error").textContent = msg || "";
}

// --- protocol -------------------------------------------------------------------------

function send(cmd) {
  const id = state.nextId++;
  cmd.id = id;
  state.ws.send(JSON.stringify(cmd));
  return new Promise((resolve, reject) => state.pending.set(id, { resolve, reject }));
}

function rpc(method, data) {
  return send({ rpc: { method, data } }).then((r) => (r && r.data) || {});
}

function onLine(line) {
  if (line === "{}") {
    state.ws.send("{}"); // pong
    return;
  }
  const m = JSON.parse(line);
  if (m.id) {
    const p = state.pending.get(m.id);
    state.pending.delete(m.id);
    if (!p) return;
    if (m.error) p.reject(new Error(m.error.code + ": " + m.error.message));
    else {
      const key = Object.keys(m).find((k) => k !== "id");
      p.resolve(key ? m[key] : {});
    }
    return;
  }
  if (m.push) onPush(m.push);
}

function connect(token) {
  showError("");
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/connection/websocket";
  const ws = new WebSocket(url);
  state.ws = ws;
  $("state").textContent = "connecting…";
  ws.addEventListener("open", async () => {
    try {
      const c = await send({ connect: token ? { token, name: "ringcast-web" } : { name: "ringcast-web" } });
      $("state").textContent = "connected";
      $("login").hidden = true;
      for (const ch of Object.keys(c.subs || {})) {
        if (ch.includes("#")) state.personal = ch;
      }
      const info = await rpc("chat.info", {});
      state.user = info.user;
      state.role = info.role;
      state.moderator = info.moderator;
      $("me").textContent = (info.user || "guest") + " (" + info.role + ")";
      $("status").disabled = !info.user;
      $("text").disabled = false;
      $("send").disabled = false;
      if (!info.chat) {
        showError("Chat is off on this server (no chat.namespaces): channels work as plain " +
          "channels here. For rooms, roles and moderation run: ringcast --config deploy/chat-dev.toml");
      }
      const rooms = info.rooms && info.rooms.length ? info.rooms : info.chat ? [] : ["demo"];
      renderRooms(rooms);
      if (rooms.length) await join(rooms[0]);
    } catch (e) {
      showError("connect: " + e.message);
    }
  });
  ws.addEventListener("message", (ev) => {
    for (const line of String(ev.data).split("\n")) if (line) onLine(line);
  });
  ws.addEventListener("close", (ev) => {
    $("state").textContent = "disconnected (" + ev.code + (ev.reason ? ": " + ev.reason : "") + ")";
    $("text").disabled = true;
    $("send").disabled = true;
    $("login").hidden = false;
    if (ev.code >= 3000) showError("closed: " + ev.code + " " + ev.reason);
    for (const p of state.pending.values()) p.reject(new Error("connection closed"));
    state.pending.clear();
  });
}

// --- rooms ----------------------------------------------------------------------------

function renderRooms(rooms) {
  const ul = $("rooms");
  const known = new Set([...ul.children].map((li) => li.dataset.channel));
  for (const r of rooms) {
    if (known.has(r)) continue;
    const li = el("li", "", r);
    li.dataset.channel = r;
    li.addEventListener("click", () => join(r).catch((e) => showError(e.message)));
    ul.appendChild(li);
  }
  for (const li of ul.children) li.classList.toggle("current", li.dataset.channel === state.room);
}

async function join(channel) {
  showError("");
  if (!state.joined.has(channel)) {
    await send({ subscribe: { channel } });
    state.joined.set(channel, { messages: new Map(), html: null });
  }
  state.room = channel;
  renderRooms([channel]);
  $("room-name").textContent = channel;
  $("messages").replaceChildren();
  const room = state.joined.get(channel);
  room.messages.clear();
  try {
    const h = await send({ history: { channel, limit: 50, reverse: true } });
    const pubs = (h.publications || []).slice().reverse();
    for (const p of pubs) onPublication(channel, p);
    const offsets = pubs.filter((p) => p.data && p.data.type === "message").map((p) => p.offset);
    if (offsets.length) {
      const r = await rpc("reaction.list", { channel, offsets });
      for (const [offset, v] of Object.entries(r.reactions || {})) {
        for (const [emoji, n] of Object.entries(v.counts)) setReaction(channel, Number(offset), emoji, n, v.mine.includes(emoji));
      }
    }
  } catch (e) {
    showError("history: " + e.message);
  }
  await loadPresence(channel);
}

async function loadPresence(channel) {
  state.presence.clear();
  try {
    const p = await send({ presence: { channel } });
    for (const [client, info] of Object.entries(p.presence || {})) state.presence.set(client, info);
  } catch (e) {
    // Presence may be off for this room: show nobody.
  }
  renderPresence();
}

function statusOf(info) {
  const ci = info.conn_info || info.connInfo;
  return (ci && ci.status) || "online";
}

function renderPresence() {
  const ul = $("presence");
  ul.replaceChildren();
  const byUser = new Map();
  for (const info of state.presence.values()) byUser.set(info.user || "guest", info);
  for (const [user, info] of [...byUser.entries()].sort()) {
    const li = el("li", "member");
    li.dataset.user = user;
    li.appendChild(el("span", "name", user));
    li.appendChild(el("span", "status", statusOf(info)));
    if (state.moderator && user !== state.user && user !== "guest") {
      for (const [cls, label, method, extra] of [
        ["mute", "mute 1m", "mod.mute", { duration: "1m" }],
        ["kick", "kick", "mod.kick", {}],
        ["ban", "ban 1h", "mod.ban", { duration: "1h" }],
      ]) {
        const b = el("button", cls, label);
        b.addEventListener("click", () =>
          rpc(method, Object.assign({ user, channel: state.room, reason: "by " + state.user + " from the web page" }, extra))
            .then(() => note("you: " + label + " " + user))
            .catch((e) => showError(method + ": " + e.message)),
        );
        li.appendChild(b);
      }
    }
    ul.appendChild(li);
  }
}

// --- messages -------------------------------------------------------------------------

function textWithMentions(text) {
  const span = el("span", "text");
  const re = /(^|[^A-Za-z0-9_.@-])@([A-Za-z0-9_.-]{1,64})/g;
  let at = 0;
  let m;
  while ((m = re.exec(text))) {
    const start = m.index + m[1].length;
    span.appendChild(document.createTextNode(text.slice(at, start)));
    span.appendChild(el("span", "mention", "@" + m[2]));
    at = start + 1 + m[2].length;
  }
  span.appendChild(document.createTextNode(text.slice(at)));
  return span;
}

function onPublication(channel, pub) {
  const d = pub.data || {};
  const room = state.joined.get(channel);
  if (!room || channel !== state.room) return;
  const author = (pub.info && pub.info.user) || "server";
  if (d.type === "message") {
    const li = el("li", "msg");
    li.dataset.offset = pub.offset;
    li.appendChild(el("span", "author", author));
    li.appendChild(textWithMentions(d.text));
    if ((d.mentions || []).includes(state.user)) li.classList.add("mentions-me");
    const reactions = el("span", "reactions");
    for (const e of EMOJI) {
      const b = el("button", "react", e);
      b.dataset.emoji = e;
      b.dataset.count = "0";
      b.addEventListener("click", () => {
        const method = b.classList.contains("mine") ? "reaction.remove" : "reaction.add";
        rpc(method, { channel, offset: pub.offset, emoji: e })
          .then(() => b.classList.toggle("mine", method === "reaction.add"))
          .catch((err) => showError(method + ": " + err.message));
      });
      reactions.appendChild(b);
    }
    li.appendChild(reactions);
    room.messages.set(pub.offset, li);
    $("messages").appendChild(li);
    li.scrollIntoView({ block: "end" });
  } else if (d.type === "edit") {
    const li = room.messages.get(d.offset);
    if (li) {
      li.querySelector(".text").replaceWith(textWithMentions(d.text));
      if (!li.querySelector(".edited")) li.insertBefore(el("span", "edited", "(edited)"), li.querySelector(".reactions"));
    }
  } else if (d.type === "delete") {
    const li = room.messages.get(d.offset);
    if (li) {
      li.classList.add("deleted");
      li.querySelector(".text").textContent = "message deleted";
    }
  } else if (d.type === "reaction") {
    setReaction(channel, d.offset, d.emoji, d.count, undefined);
  }
}

function setReaction(channel, offset, emoji, count, mine) {
  const room = state.joined.get(channel);
  const li = room && room.messages.get(offset);
  if (!li) return;
  let b = [...li.querySelectorAll(".react")].find((x) => x.dataset.emoji === emoji);
  if (!b) return;
  b.dataset.count = String(count);
  b.textContent = count > 0 ? emoji + " " + count : emoji;
  if (mine !== undefined) b.classList.toggle("mine", mine);
}

function note(text) {
  const li = el("li", "", text);
  $("notifications").prepend(li);
}

function onPush(p) {
  const ch = p.channel;
  if (p.pub) {
    if (ch === state.personal || (ch && ch.includes("#") && !state.joined.has(ch))) {
      const d = p.pub.data || {};
      if (d.type === "mention") note("@" + d.from + " mentioned you in " + d.channel + ": " + d.text);
      else if (d.type === "dm") note("DM from " + d.from + ": " + d.text + " (open " + d.channel + ")");
      else if (d.type === "moderation") note("moderation: " + d.action + " by " + d.by + (d.reason ? " — " + d.reason : ""));
      else note(JSON.stringify(d));
      if (d.type === "dm") renderRooms([d.channel]);
      return;
    }
    onPublication(ch, p.pub);
  } else if (p.join && ch === state.room) {
    const info = p.join.info;
    state.presence.set(info.client, info);
    renderPresence();
  } else if (p.leave && ch === state.room) {
    state.presence.delete(p.leave.info.client);
    renderPresence();
  } else if (p.unsubscribe) {
    state.joined.delete(ch);
    note("left " + ch + ": " + p.unsubscribe.reason);
    if (ch === state.room) {
      $("messages").replaceChildren(el("li", "system", "you are no longer in " + ch));
    }
  } else if (p.subscribe && ch && ch.includes("#")) {
    state.personal = state.personal || ch;
  }
}

// --- wiring ---------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("connect").addEventListener("click", () => connect($("token").value.trim()));
  $("guest").addEventListener("click", () => connect(""));
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("text").value;
    if (!state.room || !text.trim()) return;
    send({ publish: { channel: state.room, data: { type: "message", text } } })
      .then(() => {
        $("text").value = "";
        showError("");
      })
      .catch((err) => showError("publish: " + err.message));
  });
  $("text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const ch = $("room-input").value.trim();
    if (ch) join(ch).catch((err) => showError("join: " + err.message));
  });
  $("dm-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const user = $("dm-user").value.trim();
    rpc("dm.open", { user })
      .then((r) => join(r.channel))
      .catch((err) => showError("dm.open: " + err.message));
  });
  $("status").addEventListener("change", () =>
    rpc("status.set", { status: $("status").value }).catch((e) => showError("status.set: " + e.message)),
  );
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    $("token").value = decodeURIComponent(m[1]);
    history.replaceState(null, "", location.pathname);
    connect($("token").value);
  }
});
