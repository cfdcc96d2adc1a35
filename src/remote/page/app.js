"use strict";
// The control page: reads the frame's state by long-polling /api/events and
// sends each action as a POST carrying the page's CSRF value. Style names are
// only ever set as text, never as markup.

const csrf = document.querySelector('meta[name="csrf"]').content;
const $ = (id) => document.getElementById(id);
let version = 0;
let state = null;
let gridKey = "";
const held = { strength: false, morph: false };

function say(text) {
  $("message").textContent = text;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function post(path, body, raw) {
  const opts = { method: "POST", headers: { "X-Styleframe-CSRF": csrf }, credentials: "same-origin" };
  if (raw !== undefined) {
    opts.body = raw;
    opts.headers["Content-Type"] = "application/octet-stream";
  } else if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers["Content-Type"] = "application/json";
  }
  const r = await fetch(path, opts);
  if (!r.ok) {
    const text = (await r.text()).trim();
    say(text || r.statusText);
    throw new Error(text);
  }
  return r;
}

function titleOf(s, name) {
  const st = s.styles.find((x) => x.name === name);
  return st && st.title ? st.title : name;
}

function render(s) {
  state = s;
  $("current").textContent = titleOf(s, s.style);
  const parts = [];
  if (s.fps > 0) parts.push(s.fps.toFixed(1) + " fps");
  if (s.infer_ms != null) parts.push(Math.round(s.infer_ms) + " ms per frame");
  if (s.cpu_temp_c != null) parts.push("CPU " + Math.round(s.cpu_temp_c) + " °C");
  if (!s.screen_on) parts.push("screen dark");
  $("stats").textContent = parts.join(" · ");
  if (!held.strength) $("strength").value = s.strength;
  $("strength-out").textContent = Math.round(s.strength * 100) + " %";
  if (!held.morph) $("morph").value = s.morph_seconds;
  $("morph-out").textContent = s.morph_seconds.toFixed(1) + " s";
  $("gallery").checked = s.gallery;
  $("screen").checked = s.screen_on;
  $("add").hidden = !s.uploads;
  if (s.preview && $("live-box").hidden) {
    $("live-box").hidden = false;
    livePreview();
  }
  renderGrid(s);
}

function tileImage(name) {
  const img = document.createElement("img");
  img.alt = "";
  img.loading = "lazy";
  const src = "/api/tile?name=" + encodeURIComponent(name);
  let tries = 0;
  // Tiles are made on the frame after start or an upload: ask again until there.
  img.onload = () => img.classList.add("ok");
  img.onerror = () => {
    if (tries++ < 40) setTimeout(() => (img.src = src + "&t=" + tries), 3000);
  };
  img.src = src;
  return img;
}

function renderGrid(s) {
  const key = JSON.stringify([s.styles.map((x) => x.name), s.user_styles]);
  if (key !== gridKey) {
    gridKey = key;
    const grid = $("grid");
    grid.replaceChildren();
    for (const st of s.styles) {
      const mine = s.user_styles.includes(st.name);
      const cell = document.createElement("div");
      const b = document.createElement("button");
      b.className = "tile";
      b.dataset.name = st.name;
      b.title = st.artist ? st.title + " (" + st.artist + ")" : st.title || st.name;
      const square = document.createElement("span");
      square.className = "square";
      square.append(tileImage(st.name));
      b.append(square);
      const label = document.createElement("span");
      label.className = "name";
      label.textContent = st.title || st.name;
      b.append(label);
      b.onclick = () => post("/api/style", { name: st.name }).catch(() => {});
      cell.append(b);
      if (mine) cell.append(userButtons(st.name));
      grid.append(cell);
    }
  }
  for (const b of document.querySelectorAll(".tile")) {
    b.classList.toggle("current", b.dataset.name === s.style);
  }
}

function userButtons(name) {
  const row = document.createElement("div");
  row.className = "mine";
  const rename = document.createElement("button");
  rename.textContent = "Rename";
  rename.onclick = async () => {
    const to = prompt("New name for " + name, name);
    if (to && to !== name) {
      await post("/api/rename", { from: name, to: to }).catch(() => {});
    }
  };
  const del = document.createElement("button");
  del.textContent = "Delete";
  del.onclick = async () => {
    if (confirm("Delete " + name + "?")) {
      await post("/api/delete", { name: name }).then(() => say("Deleted " + name)).catch(() => {});
    }
  };
  row.append(rename, del);
  return row;
}

// The live picture (remote.preview): the next one is asked for once this one is shown.
function livePreview() {
  const img = $("live");
  let n = 0;
  const next = () => setTimeout(() => (img.src = "/api/live.jpg?n=" + n++), 1000);
  img.onload = next;
  img.onerror = next;
  img.src = "/api/live.jpg?n=" + n++;
}

async function poll() {
  for (;;) {
    try {
      const r = await fetch("/api/events?since=" + version, { credentials: "same-origin", cache: "no-store" });
      if (r.status === 401) {
        say("This phone is no longer paired: scan the code on the frame again.");
        return;
      }
      if (!r.ok) throw new Error(String(r.status));
      const s = await r.json();
      version = s.version;
      render(s);
    } catch (e) {
      await sleep(2000);
    }
  }
}

function slider(id, path, held_key) {
  const el = $(id);
  el.addEventListener("pointerdown", () => (held[held_key] = true));
  el.addEventListener("pointerup", () => (held[held_key] = false));
  el.addEventListener("input", () => {
    const v = Number(el.value);
    $(id + "-out").textContent = id === "strength" ? Math.round(v * 100) + " %" : v.toFixed(1) + " s";
  });
  el.addEventListener("change", () => {
    held[held_key] = false;
    post(path, { value: Number(el.value) }).catch(() => {});
  });
}

async function upload() {
  const file = $("file").files[0];
  if (!file) return say("Choose a picture first.");
  let name = $("name").value.trim();
  if (!name) name = file.name.replace(/\.[^.]*$/, "").replace(/[^\p{L}\p{N} \-_'.,&()!]/gu, " ").trim();
  if (state && file.size > state.max_upload_bytes) {
    return say("That picture is too large (at most " + Math.round(state.max_upload_bytes / 1048576) + " MB).");
  }
  $("upload").disabled = true;
  say("Computing the style of " + name + "…");
  try {
    await post("/api/upload?name=" + encodeURIComponent(name), undefined, file);
    say("Added " + name + ".");
    $("name").value = "";
    $("file").value = "";
  } catch (e) {
    // post() already said why.
  } finally {
    $("upload").disabled = false;
  }
}

async function start() {
  $("prev").onclick = () => post("/api/prev").catch(() => {});
  $("next").onclick = () => post("/api/next").catch(() => {});
  slider("strength", "/api/strength", "strength");
  slider("morph", "/api/morph", "morph");
  $("gallery").onchange = (e) => post("/api/gallery", { on: e.target.checked }).catch(() => {});
  $("screen").onchange = (e) => post("/api/screen", { on: e.target.checked }).catch(() => {});
  $("upload").onclick = upload;
  const r = await fetch("/api/state", { credentials: "same-origin", cache: "no-store" });
  if (r.ok) {
    const s = await r.json();
    version = s.version;
    render(s);
  }
  poll();
}

start();
