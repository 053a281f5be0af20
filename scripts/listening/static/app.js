// The rating page. Every answer is sent to the server as soon as it is given (a queue that retries until the
// server has it), so closing the tab loses nothing; the same rater name resumes where it stopped.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SIDES = ["A", "B"];
  const LISTEN_SHARE = 0.8;       // a clip counts as heard once this share of it was really played ...
  const LISTEN_REPORT_MS = 4000;  // ... and its listening time is reported at most this often while playing

  let test = null;     // GET /api/test
  let session = null;  // POST /api/session: {rater, order, answers}
  let index = 0;       // position in session.order
  const queue = [];    // answers not yet acknowledged by the server, oldest first
  let sending = false;
  let retryMs = 1000;
  const listening = {A: null, B: null};  // per side: {pair, played, last, reported}

  // -- server ---------------------------------------------------------------------------------------------------

  async function api(path, body) {
    const init = body === undefined ? {cache: "no-store"} : {
      method: "POST", cache: "no-store", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const err = new Error((data && data.error) || `HTTP ${res.status}`);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  function save(item) {
    item = Object.assign({rater: session.rater}, item);
    // Later listening reports and comment edits replace earlier ones that are still waiting.
    if (item.kind === "listen" || item.kind === "comment") {
      for (let k = sending ? 1 : 0; k < queue.length; k++) {
        const q = queue[k];
        if (q.kind === item.kind && q.pair_id === item.pair_id && q.side === item.side) { queue.splice(k, 1); break; }
      }
    }
    queue.push(item);
    showSaveStatus();
    pump();
  }

  async function pump() {
    if (sending || queue.length === 0) return;
    sending = true;
    const item = queue[0];
    try {
      await api("/api/answer", item);
      queue.shift();
      retryMs = 1000;
      sending = false;
      showSaveStatus();
      pump();
    } catch (err) {
      sending = false;
      if (err.status === 400) {  // the server refused this answer: retrying would not help
        queue.shift();
        showSaveStatus(`Not saved: ${err.message}`, "err");
        pump();
        return;
      }
      showSaveStatus("Not saved yet: the server cannot be reached. Retrying\u2026", "err");
      setTimeout(pump, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    }
  }

  function showSaveStatus(text, cls) {
    const el = $("save-status");
    if (text === undefined) {
      text = queue.length ? "Saving\u2026" : "\u2713 All answers saved";
      cls = queue.length ? "pending" : "ok";
    }
    el.textContent = session ? text : "";
    el.className = `save-status ${cls || ""}`;
  }

  window.addEventListener("beforeunload", (event) => {
    if (queue.length) { event.preventDefault(); event.returnValue = ""; }
  });
  window.addEventListener("pagehide", () => {
    for (const item of queue) {
      navigator.sendBeacon("/api/answer", new Blob([JSON.stringify(item)], {type: "application/json"}));
    }
  });

  // -- state ----------------------------------------------------------------------------------------------------

  function answerOf(pid) { return session.answers[pid]; }

  function missingParts(a) {
    const parts = [];
    if (test.require_listen) {
      for (const s of SIDES) if (!(a.listened[s] && a.listened[s].ended)) parts.push(`play ${s} to the end`);
    }
    for (const s of SIDES) {
      const left = test.questions.filter((q) => a.ratings[s][q.id] === undefined).map((q) => q.id);
      if (left.length) parts.push(`rate ${s} (${left.join(", ")})`);
    }
    if (!a.preference) parts.push("choose a preference");
    return parts;
  }

  function isComplete(pid) { return missingParts(answerOf(pid)).length === 0; }
  function nComplete() { return session.order.filter(isComplete).length; }
  function firstIncomplete(from) {
    const n = session.order.length;
    for (let k = 0; k < n; k++) {
      const i = (from + k) % n;
      if (!isComplete(session.order[i])) return i;
    }
    return -1;
  }

  // -- views ----------------------------------------------------------------------------------------------------

  function show(view) {
    for (const v of ["start-view", "pair-view", "done-view"]) $(v).hidden = v !== view;
    $("footer").hidden = !session;
    if (session) $("rater-name").textContent = session.rater;
  }

  function buildClips() {
    for (const side of SIDES) {
      const card = $("clip-template").content.firstElementChild.cloneNode(true);
      card.dataset.side = side;
      card.querySelector("h2").textContent = `Clip ${side}`;
      card.querySelector("audio").id = `audio-${side}`;
      card.querySelector(".listen-note").id = `listen-${side}`;
      const box = card.querySelector(".questions");
      box.id = `questions-${side}`;
      $("clips").appendChild(card);
      for (const q of test.questions) {
        const fs = document.createElement("fieldset");
        fs.className = "question";
        const legend = document.createElement("legend");
        legend.textContent = q.text;
        fs.appendChild(legend);
        const scale = document.createElement("div");
        scale.className = "scale";
        for (let v = 1; v <= 5; v++) {
          const label = document.createElement("label");
          const input = document.createElement("input");
          Object.assign(input, {type: "radio", name: `${side}-${q.id}`, value: String(v)});
          input.dataset.side = side;
          input.dataset.question = q.id;
          input.setAttribute("aria-label", `Clip ${side}, ${q.text}: ${v}`);
          input.addEventListener("change", onRating);
          const span = document.createElement("span");
          span.textContent = String(v);
          label.append(input, span);
          scale.appendChild(label);
        }
        const anchors = document.createElement("div");
        anchors.className = "anchors";
        const lo = document.createElement("span");
        lo.textContent = `1 = ${q.low}`;
        const hi = document.createElement("span");
        hi.textContent = `5 = ${q.high}`;
        anchors.append(lo, hi);
        fs.append(scale, anchors);
        box.appendChild(fs);
      }
    }
  }

  function renderPair() {
    const pid = session.order[index];
    const a = answerOf(pid);
    $("prompt-text").textContent = test.pairs[pid].prompt;
    for (const side of SIDES) {
      const audio = $(`audio-${side}`);
      audio.pause();
      audio.src = `/audio/${encodeURIComponent(pid)}/${side}`;
      audio.load();
      const prior = a.listened[side] || {played_s: 0, ended: false};
      listening[side] = {pair: pid, played: prior.played_s, last: null, reported: 0};
      for (const q of test.questions) {
        const score = a.ratings[side][q.id];
        for (const input of document.getElementsByName(`${side}-${q.id}`)) {
          input.checked = Number(input.value) === score;
        }
      }
    }
    for (const input of document.getElementsByName("preference")) input.checked = input.value === a.preference;
    $("comment").value = a.comment || "";
    $("comment-box").open = Boolean(a.comment);
    update();
    show("pair-view");
    window.scrollTo(0, 0);
  }

  function update() {
    const pid = session.order[index];
    const a = answerOf(pid);
    const total = session.order.length;
    const done = nComplete();
    $("progress-text").textContent = `Pair ${index + 1} of ${total} \u00b7 ${done} answered`;
    $("bar-fill").style.width = `${(100 * done) / total}%`;
    for (const side of SIDES) {
      const note = $(`listen-${side}`);
      if (!test.require_listen) { note.textContent = ""; continue; }
      const ended = a.listened[side] && a.listened[side].ended;
      note.textContent = ended ? "\u2713 Played to the end" : "Play this clip to the end before answering";
      note.className = ended ? "listen-note ok" : "listen-note";
    }
    const missing = missingParts(a);
    $("missing").textContent = missing.length ? `Still to do: ${missing.join(", ")}.` : "";
    $("next-button").disabled = missing.length > 0;
    $("next-button").innerHTML = done === total && index === total - 1 ? "Finish &rarr;" : "Next &rarr;";
    $("prev-button").disabled = index === 0;
  }

  function showDone() {
    $("done-count").textContent = String(session.order.length);
    for (const side of SIDES) $(`audio-${side}`).pause();
    show("done-view");
  }

  // -- events ---------------------------------------------------------------------------------------------------

  function onRating(event) {
    const input = event.target;
    const pid = session.order[index];
    const value = Number(input.value);
    answerOf(pid).ratings[input.dataset.side][input.dataset.question] = value;
    save({pair_id: pid, kind: "rating", side: input.dataset.side, question: input.dataset.question, value});
    update();
  }

  function onPreference(event) {
    const pid = session.order[index];
    answerOf(pid).preference = event.target.value;
    save({pair_id: pid, kind: "preference", value: event.target.value});
    update();
  }

  function reportListen(side, force) {
    const state = listening[side];
    if (!state || !session) return;
    const a = answerOf(state.pair);
    const now = Date.now();
    if (!force && now - state.reported < LISTEN_REPORT_MS) return;
    state.reported = now;
    const ended = Boolean(a.listened[side] && a.listened[side].ended);
    a.listened[side] = {played_s: state.played, ended};
    save({pair_id: state.pair, kind: "listen", side, value: {played_s: state.played, ended}});
  }

  function watchAudio(side) {
    const audio = $(`audio-${side}`);
    const other = $(`audio-${side === "A" ? "B" : "A"}`);
    audio.addEventListener("play", () => { other.pause(); listening[side].last = audio.currentTime; });
    audio.addEventListener("seeking", () => { listening[side].last = null; });
    audio.addEventListener("seeked", () => { if (!audio.paused) listening[side].last = audio.currentTime; });
    audio.addEventListener("timeupdate", () => {
      const state = listening[side];
      if (audio.paused || audio.seeking) return;
      const t = audio.currentTime;
      if (state.last !== null && t > state.last && t - state.last < 1.5) state.played += t - state.last;
      state.last = t;
      reportListen(side, false);
    });
    audio.addEventListener("pause", () => { listening[side].last = null; reportListen(side, true); });
    audio.addEventListener("ended", () => {
      const state = listening[side];
      if (state.last !== null && audio.duration > state.last) state.played += audio.duration - state.last;
      state.last = null;
      const a = answerOf(state.pair);
      const heard = !isFinite(audio.duration) || state.played >= LISTEN_SHARE * audio.duration;
      a.listened[side] = {played_s: state.played, ended: heard || Boolean(a.listened[side] && a.listened[side].ended)};
      save({pair_id: state.pair, kind: "listen", side, value: a.listened[side]});
      state.reported = Date.now();
      if (state.pair === session.order[index]) update();
    });
  }

  function onNext() {
    const total = session.order.length;
    if (nComplete() === total) {
      if (index >= total - 1) { showDone(); return; }
      index += 1;
    } else {
      const next = firstIncomplete((index + 1) % total);
      index = next < 0 ? index : next;
    }
    renderPair();
  }

  function onPrev() {
    if (index > 0) { index -= 1; renderPair(); }
  }

  async function startSession(rater) {
    $("start-error").hidden = true;
    try {
      session = await api("/api/session", {rater});
    } catch (err) {
      session = null;
      $("start-error").textContent = err.status === 400 ? err.message : `Cannot reach the server (${err.message}).`;
      $("start-error").hidden = false;
      show("start-view");
      return;
    }
    localStorage.setItem(storageKey(), session.rater);
    showSaveStatus();
    const next = firstIncomplete(0);
    if (next < 0) { index = 0; showDone(); return; }
    index = next;
    renderPair();
  }

  function storageKey() { return `genrecraft-listening-rater/${test.test_id}`; }

  async function main() {
    try {
      test = await api("/api/test");
    } catch (err) {
      $("load-error").textContent = `The listening test could not be loaded (${err.message}). Is the server running?`;
      $("load-error").hidden = false;
      return;
    }
    $("n-pairs").textContent = String(Object.keys(test.pairs).length);
    $("listen-rule").hidden = !test.require_listen;
    buildClips();
    for (const input of document.getElementsByName("preference")) input.addEventListener("change", onPreference);
    for (const side of SIDES) watchAudio(side);
    $("next-button").addEventListener("click", onNext);
    $("prev-button").addEventListener("click", onPrev);
    $("review-button").addEventListener("click", () => { index = 0; renderPair(); });
    $("comment").addEventListener("change", () => {
      const pid = session.order[index];
      answerOf(pid).comment = $("comment").value;
      save({pair_id: pid, kind: "comment", value: $("comment").value});
    });
    $("start-form").addEventListener("submit", (event) => {
      event.preventDefault();
      startSession($("rater-input").value.trim());
    });
    $("switch-rater").addEventListener("click", (event) => {
      event.preventDefault();
      localStorage.removeItem(storageKey());
      window.location.href = "/";
    });
    const fromUrl = new URLSearchParams(window.location.search).get("rater");
    const rater = fromUrl || localStorage.getItem(storageKey());
    if (rater) {
      await startSession(rater);
    } else {
      show("start-view");
      $("rater-input").focus();
    }
  }

  main();
})();
