// The dashboard: reads the API of the server it came from, redraws when a new block arrives.
// No frameworks, no external requests: the page works offline (and its CSP forbids otherwise).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 1000;
const PALETTE = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477",
                 "#66aa00", "#b82e2e", "#316395", "#994499", "#22aa99", "#aaaa11", "#6633cc"];
const ZERO = "0x" + "0".repeat(64);
const state = { block: null, world: null, fit: true, facilities: [], refreshing: false };

const $ = (id) => document.getElementById(id);
const short = (hex) => hex.slice(0, 6) + "…" + hex.slice(-4);
const domainLabel = (d) => d.id === ZERO ? "unattested" : (d.name || short(d.id));
const duration = (s) => s >= 172_800 ? `${Math.round(s / 86_400)}d` : s >= 7_200 ? `${Math.round(s / 3_600)}h`
  : s >= 120 ? `${Math.round(s / 60)}m` : `${s}s`;
const pct = (bps) => (bps / 100).toFixed(bps % 100 ? 2 : 0) + "%";
const eth = (wei) => {
  const n = BigInt(wei), whole = n / 10n ** 18n, frac = (n % 10n ** 18n) / 10n ** 15n;
  return `${whole}${frac ? "." + String(frac).padStart(3, "0").replace(/0+$/, "") : ""} ETH`;
};

function el(tag, attrs = {}, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
                                      : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.setAttribute("class", v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

async function getJSON(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = Array.isArray(body.detail) ? body.detail.map((e) => e.msg).join("; ") : body.detail;
    throw new Error(detail || `HTTP ${response.status}`);
  }
  return body;
}

// ------------------------------------------------------------------ map

const project = (loc) => [loc.longitude + 180, 90 - loc.latitude];  // equirectangular

function viewBox(facilities) {
  const placed = facilities.filter((f) => f.location).map((f) => project(f.location));
  if (!state.fit || placed.length === 0) return [0, 0, 360, 180];
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const [x, y] of placed) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  let w = Math.max(x1 - x0 + 30, 60), h = Math.max(y1 - y0 + 24, 30);
  if (w / h > 2) h = w / 2; else w = h * 2;              // keep the page's 2:1 frame
  w = Math.min(w, 360); h = Math.min(h, 180);
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const x = Math.min(Math.max(cx - w / 2, 0), 360 - w), y = Math.min(Math.max(cy - h / 2, 0), 180 - h);
  return [x, y, w, h];
}

// Expiring: a required proof has less than a quarter of its lifetime left (an attestor renews
// well before expiry, so this means renewals have stopped arriving).
function freshness(f, policy) {
  if (f.stale) return "stale";
  for (const p of f.proofs) {
    if (!p.required || p.expires_in_s === null) continue;
    const lifetime = p.lifetime_s || policy.max_lifetime_s[p.kind] || 1;
    if (p.expires_in_s < lifetime / 4) return "expiring";
  }
  return "fresh";
}

// Degraded: the latest fresh health evidence shows a reason (UPS on battery, clock unsynchronised,
// disk nearly full); the site still counts, but the venue moves leadership and new orders away.
function degradedReasons(f) {
  const c = f.condition;
  return c && c.fresh && c.degraded ? c.reasons.join(", ") : null;
}

function drawMap(facilities, links, policy) {
  const svg = $("map");
  const [x, y, w, h] = viewBox(facilities);
  svg.setAttribute("viewBox", `${x} ${y} ${w} ${h}`);
  svg.replaceChildren();
  const px = w / Math.max(svg.clientWidth || 900, 300);  // degrees per screen pixel
  const grid = el("svg:g", { class: "graticule" });
  for (let lon = 0; lon <= 360; lon += 30) grid.append(el("svg:line", { x1: lon, y1: 0, x2: lon, y2: 180 }));
  for (let lat = 0; lat <= 180; lat += 30) grid.append(el("svg:line", { x1: 0, y1: lat, x2: 360, y2: lat }));
  svg.append(grid);
  if (state.world) svg.append(el("svg:path", { class: "land", d: state.world.d }));

  const byId = new Map(facilities.map((f) => [f.id, f]));
  const drawn = new Map();                    // one line per unordered pair: the latest report
  for (const link of links) {
    const key = [link.facility_id, link.peer_facility_id].sort().join();
    const prev = drawn.get(key);
    if (!prev || prev.measured_at <= link.measured_at) drawn.set(key, link);
  }
  const lines = el("svg:g", { id: "links" });
  for (const link of drawn.values()) {
    const a = byId.get(link.facility_id), b = byId.get(link.peer_facility_id);
    const pa = a && (a.geography.landmark || a.location), pb = b && (b.geography.landmark || b.location);
    if (!pa || !pb) continue;
    const [x1, y1] = project(pa), [x2, y2] = project(pb);
    const cls = link.consistent === null ? "unknown" : link.consistent ? "ok" : "bad";
    const line = el("svg:line", { class: `link ${cls}`, x1, y1, x2, y2,
                                  dataset: { from: link.facility_id, to: link.peer_facility_id } });
    const km = (m) => m === null ? "?" : Math.round(m / 1000).toLocaleString();
    const rtt = link.rtt_micros === null ? "measured by one end only" :
      `${(link.rtt_micros / 1000).toFixed(2)} ms (both ends) allows ≤ ${km(link.rtt_distance_bound_m)} km`;
    line.append(el("svg:title", {}, `${a.name || short(a.id)} ↔ ${b.name || short(b.id)}: RTT ${rtt}; ` +
      `positions ≥ ${km(link.distance_lower_bound_m)} km apart → ${cls === "ok" ? "consistent" : cls === "bad" ? "INCONSISTENT" : "unknown"}`));
    lines.append(line);
  }
  svg.append(lines);

  const marks = el("svg:g", { id: "facilities-layer" });
  const labels = el("svg:g", { id: "labels" });
  // Labels go beside their marker where they overlap no other marker or label (greedy).
  const markerBoxes = facilities.filter((f) => f.location).map((f) => {
    const [mx, my] = project(f.location);
    return [mx - 8 * px, my - 8 * px, mx + 8 * px, my + 8 * px];
  });
  const taken = [];
  const placeLabel = (cx, cy, text) => {
    const fs = 13 * px, w = text.length * fs * 0.62, h = fs, pad = 3 * px;
    const left = -10 - w / px, centre = -w / px / 2;
    const options = [[10, 4], [10, 16], [10, -8], [left, 4], [left, 16], [left, -8],
                     [centre, -12], [centre, 24], [10, 28], [left, 28]];
    const own = (b) => b[0] < cx && cx < b[2] && b[1] < cy && cy < b[3];
    const obstacles = markerBoxes.filter((b) => !own(b)).concat(taken);
    for (const [ox, oy] of options) {
      const x = cx + ox * px, y = cy + oy * px, box = [x - pad, y - h - pad, x + w + pad, y + pad];
      if (!obstacles.some((b) => box[0] < b[2] && b[0] < box[2] && box[1] < b[3] && b[1] < box[3])) {
        taken.push(box);
        return [x, y];
      }
    }
    return [cx + 10 * px, cy + 4 * px];
  };
  const unplaced = [];
  for (const f of facilities) {
    if (!f.location) { unplaced.push(f.name || short(f.id)); continue; }
    const [cx, cy] = project(f.location);
    const state_ = freshness(f, policy);
    const g = el("svg:g", { class: "site", dataset: { id: f.id, name: f.name || "", freshness: state_ } });
    const disc = f.geography.proven_disc;
    if (disc) {
      const r = disc.radius_m / 111_320;      // metres to degrees of latitude (display only)
      const [dx, dy] = project(disc.center);
      g.append(el("svg:circle", { class: "disc", cx: dx, cy: dy, r }));
    }
    if (f.geography.flagged) g.append(el("svg:circle", { class: "ring", cx, cy, r: 11 * px }));
    const sick = degradedReasons(f);
    const dot = el("svg:circle", { class: `facility ${state_}${sick ? " degraded" : ""}`, cx, cy, r: 7 * px });
    const why = f.stale ? `stale: ${f.stale_reasons.join(", ")}` : state_;
    dot.append(el("svg:title", {}, `${f.name || f.id} — ${why}${sick ? ` — degraded: ${sick}` : ""}${f.geography.flagged ? " — geography flagged" : ""}`));
    g.append(dot);
    marks.append(g);
    const label = f.name || short(f.id);
    const [lx, ly] = placeLabel(cx, cy, label);
    labels.append(el("svg:text", { class: "name", x: lx, y: ly, "font-size": 13 * px,
                                   "stroke-width": 3 * px, dataset: { id: f.id } }, label));
  }
  svg.append(marks, labels);
  $("unplaced").textContent = unplaced.length ? `No claimed coordinates yet: ${unplaced.join(", ")}` : "";
}

// ----------------------------------------------------------------- bars

function drawBars(committee, scores) {
  const box = $("bars");
  box.replaceChildren();
  if (committee.members.length === 0) {
    box.append(el("p", { class: "muted" }, "No committee has been selected yet."));
    return;
  }
  const byDim = new Map(scores.dimensions.map((d) => [d.dimension, d]));
  for (const dim of committee.stake_by_domain) {
    const row = el("div", { class: "bar-row", dataset: { dimension: dim.dimension } });
    row.append(el("span", { class: "dim" }, dim.dimension));
    const bar = el("div", { class: "bar" });
    dim.domains.forEach((d, i) => {
      const unattested = d.domain.id === ZERO;
      const seg = el("div", { class: "seg" + (unattested ? " unattested" : "") }, domainLabel(d.domain));
      seg.style.width = `${d.share_bps / 100}%`;
      if (!unattested) seg.style.background = PALETTE[i % PALETTE.length];
      seg.title = `${domainLabel(d.domain)}: ${pct(d.share_bps)} of stake, ${d.members} member(s)`;
      bar.append(seg);
    });
    const third = el("div", { class: "third" + (dim.dimension === "facility" ? " labelled" : "") });
    third.style.left = `${committee.halt_share_bps / 100}%`;
    third.title = "a third of the stake: consensus halts once failed domains hold this much";
    bar.append(third);
    row.append(bar);
    const s = byDim.get(dim.dimension);
    row.append(el("span", { class: "nt" }, s ? `N=${s.nakamoto} · T=${s.tolerance}` : ""));
    box.append(row);
  }
}

// ---------------------------------------------------------- score, table

function drawScore(scores, committee) {
  $("score").textContent = committee.members.length ? String(scores.score) : "–";
  $("weakest").textContent = committee.members.length ? scores.weakest : "–";
  const cls = $("class");
  cls.textContent = scores.configuration_class.replace("_", "-");
  cls.className = `badge ${scores.configuration_class}`;
  $("class-description").textContent = scores.class_description;
  $("epoch").textContent = String(committee.epoch);
  $("stake").textContent = eth(committee.total_stake_wei);
}

function drawTable(facilities, policy) {
  const body = $("facilities").querySelector("tbody");
  body.replaceChildren();
  for (const f of facilities) {
    const tr = el("tr", { dataset: { id: f.id } });
    const name = el("td");
    name.append(el("strong", {}, f.name || "(unnamed)"), el("br"), el("code", {}, short(f.id)));
    const tpm = f.identity.backend === "tpm";
    const id = el("span", { class: `pill identity ${f.identity.backend}` }, tpm ? "TPM" : "file key");
    id.title = tpm
      ? `proofs bound to TPM attestation key ${f.identity.tpm_ak_certificate}: the hardware domain is the measured firmware`
      : "signed by a key in a file (weaker: a copied key signs anywhere; the hardware domain is configured, not measured)";
    name.append(el("br"), id);
    const st = freshness(f, policy);
    const state_ = el("td");
    state_.append(el("span", { class: `pill ${st}` }, st));
    if (f.stale_reasons.length) state_.append(el("div", { class: "muted" }, f.stale_reasons.join(", ")));
    const sick = degradedReasons(f);
    if (sick) {
      const pill = el("span", { class: "pill degraded" }, "degraded");
      if (f.condition.ups_status) pill.title = `UPS ${f.condition.ups_status}`;
      state_.append(" ", pill, el("div", { class: "muted degraded-reasons" }, sick));
    }
    const domains = el("td");
    for (const d of f.domains) if (d.dimension !== "facility") domains.append(el("span", { class: "pill" }, `${d.dimension}: ${domainLabel(d)}`));
    const proofs = el("td");
    for (const p of f.proofs) {
      if (!p.required && !p.latest) continue;
      const cls = p.fresh ? "fresh" : "stale";
      const when = p.expires_in_s === null ? "never" : p.fresh ? duration(p.expires_in_s) : "expired";
      const pill = el("span", { class: `pill ${cls}` }, `${p.kind} ${when}`);
      if (p.latest && p.latest.index !== null) pill.title = `tx ${p.latest.tx} #${p.latest.index} (block ${p.latest.block_number})`;
      proofs.append(pill);
    }
    const geo = el("td");
    const flag = f.geography.flag;
    const by = flag ? ` (${flag.by_landmark ? "landmark " : "with "}${flag.against_name || short(flag.against_facility_id)})` : "";
    geo.append(el("div", {}, f.geography.flagged ? `flagged: RTT contradicts claim${by}` : "not flagged"));
    if (f.geography.landmark) geo.append(el("div", { class: "muted" }, "landmark"));
    if (f.geography.proven_disc) {
      const d = f.geography.proven_disc;
      geo.append(el("div", { class: "muted" }, `within ${Math.round(d.radius_m / 1000)} km of ${d.landmark_name || short(d.landmark_facility_id)}`));
    }
    tr.append(name, state_, domains, proofs, geo, el("td", {}, String(f.validators.length)));
    body.append(tr);
  }
}

function drawVenue(venue) {
  const box = $("venue");
  if (!venue || !venue.configured) {
    box.textContent = "not running";
    box.dataset.leader = "";
    return;
  }
  const serving = venue.nodes.filter((n) => n.serving).length;
  const lead = venue.leader ? `leader ${venue.leader}` : "no leader";
  const etcd = venue.etcd_voting == null ? "" :
    ` · etcd ${venue.etcd_voting} voting` + (venue.etcd_learners ? `, ${venue.etcd_learners} joining` : "");
  box.textContent = `${lead} · ${serving} of ${venue.nodes.length} nodes serving${etcd}`;
  box.title = venue.nodes.map((n) => `${n.site || n.node || n.url}: ${n.reachable ? (n.serving ? `serving, seq ${n.seq}` : "not serving") : `unreachable (${n.error})`}`).join("\n");
  box.dataset.leader = venue.leader || "";
}

// --------------------------------------------------------------- refresh

async function refresh() {
  if (state.refreshing) return;
  state.refreshing = true;
  try {
    const [facilities, latency, committee, scores] = await Promise.all(
      ["/facilities", "/latency", "/committee", "/scores"].map(getJSON));
    state.facilities = facilities.facilities;
    state.policy = facilities.freshness_policy;
    state.links = latency.links;
    drawMap(state.facilities, state.links, state.policy);
    drawBars(committee, scores);
    drawScore(scores, committee);
    drawTable(state.facilities, state.policy);
    drawVenue(await getJSON("/venue").catch(() => null));
    $("block").textContent = String(scores.block.number);
    document.body.dataset.block = String(scores.block.number);
    document.body.dataset.ready = "true";
  } catch (err) {
    setStatus("down", `error: ${err.message}`);
  } finally {
    state.refreshing = false;
  }
}

function setStatus(cls, text) {
  const s = $("status");
  s.className = `status ${cls}`;
  s.textContent = text;
}

async function tick() {
  try {
    const response = await fetch("/health");
    const health = await response.json();
    if (!health.chain_reachable) {
      setStatus("down", `chain unavailable: ${health.reason}`);
      return;
    }
    setStatus("ok", `block ${health.block.number} · chain ${health.deployment.chain_id}`);
    if (health.block.number !== state.block) {
      state.block = health.block.number;
      await refresh();
    }
  } catch (err) {
    setStatus("down", "API unreachable");
  }
}

async function whatIf(event) {
  event.preventDefault();
  const refs = $("whatif-input").value.split(/[\s,]+/).filter(Boolean);
  const out = $("whatif-result");
  if (!refs.length) { out.textContent = ""; return; }
  try {
    const q = refs.map((r) => "fail=" + encodeURIComponent(r)).join("&");
    const r = await getJSON(`/scores/what-if?${q}`);
    out.textContent = r.live
      ? `still live: ${pct(r.offline_share_bps)} of stake offline; ${r.score} more whole domain(s) may fail (weakest: ${r.weakest})`
      : `consensus HALTS: ${pct(r.offline_share_bps)} of stake offline (${r.failed_members.length} member(s))`;
  } catch (err) {
    out.textContent = `cannot check: ${err.message}`;
  }
}

async function start() {
  $("whatif").addEventListener("submit", whatIf);
  $("map-fit").addEventListener("click", () => {
    state.fit = !state.fit;
    $("map-fit").textContent = state.fit ? "world" : "fit";
    drawMap(state.facilities, state.links || [], state.policy || { max_lifetime_s: {} });
  });
  try { state.world = await getJSON("/static/world.json"); } catch (err) { state.world = null; }
  await tick();
  setInterval(tick, POLL_MS);
}

start();
