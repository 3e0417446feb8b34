// The stats page: /stats.json once a second, shown as a table with rates. Text only.
"use strict";
let last = null;
let lastAt = 0;

function row(tbody, name, value, rate) {
  const tr = document.createElement("tr");
  for (const v of [name, String(value), rate]) {
    const td = document.createElement("td");
    td.textContent = v;
    tr.appendChild(td);
  }
  tbody.appendChild(tr);
}

async function tick() {
  const state = document.getElementById("state");
  try {
    const r = await fetch("/stats.json", { cache: "no-store" });
    const s = await r.json();
    const now = performance.now();
    const tbody = document.querySelector("#stats tbody");
    tbody.replaceChildren();
    for (const [k, v] of Object.entries(s)) {
      let rate = "";
      if (last && typeof v === "number" && typeof last[k] === "number" && now > lastAt) {
        rate = ((v - last[k]) / ((now - lastAt) / 1000)).toFixed(1);
      }
      row(tbody, k, v, rate);
    }
    last = s;
    lastAt = now;
    state.textContent = "live · " + new Date().toLocaleTimeString();
  } catch (e) {
    state.textContent = "cannot read /stats.json: " + e;
  }
}

tick();
setInterval(tick, 1000);
