// The perf2score page: upload a file, follow its conversion, show every page, play, download.
"use strict";

const $ = (id) => document.getElementById(id);
let zoom = 1.0;
let notes = null;
let pollTimer = null;
const player = new ScorePlayer(() => setPlaying(false));

function show(id, visible) { $(id).hidden = !visible; }

function setPlaying(on) {
  $("play").textContent = on ? "■ Stop" : "▶ Play";
  document.body.dataset.playing = on ? "true" : "false";
}

function fail(message) {
  clearTimeout(pollTimer);
  show("progress", false);
  $("error").textContent = message;
  show("error", true);
  document.body.dataset.state = "failed";
}

async function upload(file) {
  player.stop();
  setPlaying(false);
  clearTimeout(pollTimer);
  show("error", false);
  show("result", false);
  $("score").replaceChildren();
  notes = null;
  document.body.dataset.state = "uploading";
  $("stage").textContent = `uploading ${file.name}`;
  $("elapsed").textContent = "";
  show("progress", true);
  const query = new URLSearchParams({ backend: $("backend").value, name: file.name });
  for (const [field, key] of [["time-signature", "time_signature"], ["tempo", "tempo"]]) {
    const value = $(field).value.trim(); // what the user knows of the piece, when given
    if (value) query.set(key, value);
  }
  if ($("key-changes").checked) query.set("key_changes", "true");
  let answer;
  try {
    answer = await fetch(`/api/jobs?${query}`, { method: "POST", body: file });
  } catch (error) {
    return fail(`the upload failed (${error.message})`);
  }
  const job = await answer.json();
  if (!answer.ok) return fail(job.error || `the server answered ${answer.status}`);
  follow(job.id);
}

async function follow(id) {
  const answer = await fetch(`/api/jobs/${id}`);
  const job = await answer.json();
  if (!answer.ok) return fail(job.error);
  // "done" only once the score is drawn (showScore), so that whoever waits for it sees it
  document.body.dataset.state = job.state === "done" ? "drawing" : job.state;
  if (job.state === "failed") return fail(job.error);
  if (job.state === "done") return showScore(job);
  $("stage").textContent = job.state === "queued" && job.position > 0
    ? `waiting: ${job.position} conversion(s) ahead`
    : job.stage;
  $("elapsed").textContent = job.elapsed_s ? `(${job.elapsed_s.toFixed(0)} s)` : "";
  pollTimer = setTimeout(() => follow(id), 500);
}

async function showScore(job) {
  const pages = [];
  for (let k = 1; k <= job.pages; k += 1) {
    const answer = await fetch(`/api/jobs/${job.id}/pages/${k}.svg`);
    const page = document.createElement("div");
    page.className = "page";
    page.innerHTML = await answer.text();  // our own server's verovio SVG
    pages.push(page);
  }
  $("score").replaceChildren(...pages);
  applyZoom();
  notes = await (await fetch(`/api/jobs/${job.id}/notes.json`)).json();
  $("summary").textContent =
    `${job.name}: ${job.notes.toLocaleString()} notes, ${job.pages} page(s), ${job.backend}`;
  const links = Object.entries(job.downloads).map(([fmt, d]) => {
    const a = document.createElement("a");
    a.href = d.url;
    a.id = `download-${fmt}`;
    a.textContent = `⬇ ${d.label}`;
    a.setAttribute("download", "");
    return a;
  });
  $("downloads").replaceChildren(...links);
  show("progress", false);
  show("result", true);
  document.body.dataset.state = "done";
}

function applyZoom() {
  $("zoom-level").textContent = `${Math.round(zoom * 100)} %`;
  for (const page of document.querySelectorAll("#score .page")) {
    page.style.width = `${Math.round(800 * zoom)}px`;
  }
}

function pick(files) {
  if (files && files.length) upload(files[0]);
}

$("file").addEventListener("change", (event) => pick(event.target.files));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  pick(event.dataTransfer.files);
});
$("zoom-in").addEventListener("click", () => { zoom = Math.min(3, zoom * 1.25); applyZoom(); });
$("zoom-out").addEventListener("click", () => { zoom = Math.max(0.3, zoom / 1.25); applyZoom(); });
$("play").addEventListener("click", () => {
  if (player.playing) {
    player.stop();
    setPlaying(false);
  } else if (notes && notes.length) {
    player.play(notes);
    setPlaying(true);
  }
});
document.body.dataset.state = "ready";
setPlaying(false);
