// VibeVoice playground: a plain client of this server's public API. No framework, no build step.
// Rule: nothing that comes from the user or the server is ever parsed as HTML (textContent only).
"use strict";

const $ = (id) => document.getElementById(id);
const RATE = 24000; // VibeVoice-Realtime's sample rate; also the realtime session's input rate

// ---------------------------------------------------------------- small helpers

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function authHeaders() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: "Bearer " + key } : {};
}

async function errorMessage(resp) {
  let text = "";
  try {
    text = await resp.text();
    const body = JSON.parse(text);
    if (body && body.error && body.error.message) return String(body.error.message);
  } catch (_) {
    /* not JSON: fall through */
  }
  return "HTTP " + resp.status + (text ? ": " + text.slice(0, 200) : "");
}

function setStatus(node, text, kind) {
  node.textContent = text;
  node.classList.toggle("error", kind === "error");
  node.classList.toggle("ok", kind === "ok");
}

function clock(seconds, sep) {
  // 83.456 -> "00:01:23,456" (sep ",") or "00:01:23.456" (sep ".")
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3600000);
  const m = Math.floor((ms % 3600000) / 60000);
  const s = Math.floor((ms % 60000) / 1000);
  const pad = (n, w) => String(n).padStart(w, "0");
  return pad(h, 2) + ":" + pad(m, 2) + ":" + pad(s, 2) + sep + pad(ms % 1000, 3);
}

function shortClock(seconds) {
  const t = Math.max(0, seconds);
  const m = Math.floor(t / 60);
  const s = t - m * 60;
  return String(m).padStart(2, "0") + ":" + s.toFixed(1).padStart(4, "0");
}

function setLink(link, blob) {
  if (link.href && link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(blob);
}

function concat(chunks) {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function wavFromPcm(pcm, rate) {
  // 16-bit mono PCM bytes -> a complete WAV file (so the audio element can replay raw pcm).
  const header = new DataView(new ArrayBuffer(44));
  const text = (at, s) => [...s].forEach((ch, i) => header.setUint8(at + i, ch.charCodeAt(0)));
  text(0, "RIFF");
  header.setUint32(4, 36 + pcm.length, true);
  text(8, "WAVE");
  text(12, "fmt ");
  header.setUint32(16, 16, true);
  header.setUint16(20, 1, true);
  header.setUint16(22, 1, true);
  header.setUint32(24, rate, true);
  header.setUint32(28, rate * 2, true);
  header.setUint16(32, 2, true);
  header.setUint16(34, 16, true);
  text(36, "data");
  header.setUint32(40, pcm.length, true);
  return new Blob([header.buffer, pcm], { type: "audio/wav" });
}

// Server-sent events from a fetch body: yields each event's parsed JSON data.
async function* sseEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (!data || data === "[DONE]") continue;
      try {
        yield JSON.parse(data);
      } catch (_) {
        /* a malformed event is skipped, never rendered */
      }
    }
  }
}

// ---------------------------------------------------------------- API key

function setupKey() {
  const box = $("key-box");
  const input = $("api-key");
  if (document.body.dataset.auth === "true") box.hidden = false;
  try {
    input.value = sessionStorage.getItem("vibevoice-api-key") || "";
  } catch (_) {
    /* storage disabled */
  }
  box.addEventListener("submit", (e) => e.preventDefault());
  input.addEventListener("change", () => {
    try {
      sessionStorage.setItem("vibevoice-api-key", input.value.trim());
    } catch (_) {
      /* storage disabled */
    }
    loadVoices();
  });
}

// ---------------------------------------------------------------- Speak

const speak = { controller: null, ctx: null, sources: [] };

async function loadVoices() {
  const select = $("tts-voice");
  const status = $("tts-status");
  try {
    const resp = await fetch("/v1/audio/voices", { headers: authHeaders() });
    if (!resp.ok) {
      if (resp.status === 401) $("key-box").hidden = false;
      setStatus(status, "Voices: " + (await errorMessage(resp)), "error");
      return;
    }
    const data = await resp.json();
    const previous = select.value;
    select.replaceChildren();
    for (const v of Array.isArray(data.voices) ? data.voices : []) {
      if (!v || typeof v.id !== "string") continue;
      const details = [v.language, v.gender].filter((x) => typeof x === "string" && x).join(", ");
      const label = String(v.name || v.id) + (details ? " (" + details + ")" : "");
      select.append(new Option(label, v.id));
    }
    // Keep the choice across reloads of the list; else start with a voice in the browser's language.
    const lang = (navigator.language || "en").slice(0, 2).toLowerCase();
    const options = [...select.options];
    const pick = options.find((o) => o.value === previous) || options.find((o) => o.value.startsWith(lang + "-"));
    if (pick) select.value = pick.value;
    if (status.classList.contains("error")) setStatus(status, "");
  } catch (err) {
    setStatus(status, "Voices: " + err.message, "error");
  }
}

function stopSpeaking() {
  if (speak.controller) speak.controller.abort();
  for (const s of speak.sources) {
    try {
      s.stop();
    } catch (_) {
      /* already stopped */
    }
  }
  speak.sources = [];
}

// Plays s16le mono chunks through WebAudio as they arrive, back to back.
class PcmPlayer {
  constructor(ctx, rate) {
    this.ctx = ctx;
    this.rate = rate;
    this.next = 0;
    this.carry = null; // an odd trailing byte waits for its partner
    this.samples = 0;
    this.peak = 0;
  }
  push(bytes) {
    if (this.carry) {
      bytes = concat([this.carry, bytes]);
      this.carry = null;
    }
    if (bytes.length % 2) {
      this.carry = bytes.slice(bytes.length - 1);
      bytes = bytes.slice(0, bytes.length - 1);
    }
    const n = bytes.length / 2;
    if (!n) return false;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const buf = this.ctx.createBuffer(1, n, this.rate);
    const ch = buf.getChannelData(0);
    for (let i = 0; i < n; i++) {
      ch[i] = view.getInt16(2 * i, true) / 32768;
      const a = Math.abs(ch[i]);
      if (a > this.peak) this.peak = a;
    }
    const src = this.ctx.createBufferSource();
    src.buffer = buf;
    src.connect(this.ctx.destination);
    const at = Math.max(this.next, this.ctx.currentTime + 0.05);
    src.start(at);
    this.next = at + buf.duration;
    this.samples += n;
    speak.sources.push(src);
    return true;
  }
}

// WAV as streamed by the server: a RIFF header of unknown length, then s16le samples.
class WavStripper {
  constructor() {
    this.head = new Uint8Array(0);
    this.done = false;
    this.rate = RATE;
  }
  push(bytes) {
    if (this.done) return bytes;
    this.head = concat([this.head, bytes]);
    const h = this.head;
    const view = new DataView(h.buffer, h.byteOffset, h.length);
    let at = 12;
    while (at + 8 <= h.length) {
      const id = String.fromCharCode(h[at], h[at + 1], h[at + 2], h[at + 3]);
      const size = view.getUint32(at + 4, true);
      if (id === "fmt " && at + 16 <= h.length) this.rate = view.getUint32(at + 12, true);
      if (id === "data") {
        this.done = true;
        return h.slice(at + 8);
      }
      at += 8 + size + (size % 2);
    }
    return new Uint8Array(0);
  }
}

async function playWithMediaSource(audio, mime, reader, onFirst, chunks) {
  const ms = new MediaSource();
  audio.src = URL.createObjectURL(ms);
  await new Promise((resolve) => ms.addEventListener("sourceopen", resolve, { once: true }));
  const sb = ms.addSourceBuffer(mime);
  const appended = () => new Promise((resolve) => sb.addEventListener("updateend", resolve, { once: true }));
  let started = false;
  audio.addEventListener("playing", onFirst, { once: true });
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(value);
    sb.appendBuffer(value);
    await appended();
    if (!started) {
      started = true;
      audio.play().catch(() => {});
    }
  }
  if (ms.readyState === "open") ms.endOfStream();
}

async function doSpeak() {
  stopSpeaking();
  const status = $("tts-status");
  const ttfa = $("tts-ttfa");
  const audio = $("tts-audio");
  const link = $("tts-download");
  const text = $("tts-text").value;
  const format = $("tts-format").value;
  if (!text.trim()) {
    setStatus(status, "Type some text to speak.", "error");
    return;
  }
  // Created inside the click: browsers let audio start only from a user gesture.
  if (!speak.ctx) speak.ctx = new AudioContext({ sampleRate: RATE });
  await speak.ctx.resume();
  speak.controller = new AbortController();
  $("tts-go").disabled = true;
  $("tts-stop").disabled = false;
  link.hidden = true;
  audio.pause();
  audio.removeAttribute("src");
  ttfa.textContent = "";
  setStatus(status, "Generating…");
  const t0 = performance.now();
  let first = null;
  const markFirst = () => {
    if (first !== null) return;
    first = performance.now() - t0;
    ttfa.textContent = "First audio after " + Math.round(first) + " ms";
  };
  const chunks = [];
  try {
    const resp = await fetch("/v1/audio/speech", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({
        model: "vibevoice-realtime",
        input: text,
        voice: $("tts-voice").value || undefined,
        response_format: format,
        speed: Number($("tts-speed").value),
      }),
      signal: speak.controller.signal,
    });
    if (!resp.ok) throw new Error(await errorMessage(resp));
    const reader = resp.body.getReader();
    let seconds = 0;
    let player = null;
    if (format === "pcm" || format === "wav") {
      player = new PcmPlayer(speak.ctx, RATE);
      const wav = format === "wav" ? new WavStripper() : null;
      const samples = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        chunks.push(value);
        const pcm = wav ? wav.push(value) : value;
        samples.push(pcm);
        if (wav && player.rate !== wav.rate) player.rate = wav.rate;
        if (player.push(pcm)) markFirst();
      }
      seconds = player.samples / player.rate;
      // A streamed WAV cannot know its length up front; the copy kept here gets a header with the real sizes.
      const file = wavFromPcm(concat(samples), player.rate);
      if (wav) chunks.splice(0, chunks.length, new Uint8Array(await file.arrayBuffer()));
      audio.src = URL.createObjectURL(file);
      audio.dataset.played = "webaudio";
    } else if ((format === "mp3" || format === "aac") && window.MediaSource && MediaSource.isTypeSupported(format === "mp3" ? "audio/mpeg" : "audio/aac")) {
      audio.dataset.played = "stream";
      await playWithMediaSource(audio, format === "mp3" ? "audio/mpeg" : "audio/aac", reader, markFirst, chunks);
    } else {
      // Ogg/Opus and FLAC cannot be fed to MediaSource: play once complete.
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        chunks.push(value);
      }
      audio.src = URL.createObjectURL(new Blob(chunks, { type: resp.headers.get("content-type") || "audio/" + format }));
      audio.dataset.played = "complete";
      audio.addEventListener("playing", markFirst, { once: true });
      await audio.play().catch(() => {});
    }
    if (!seconds && Number.isFinite(audio.duration)) seconds = audio.duration;
    const bytes = chunks.reduce((n, c) => n + c.length, 0);
    const mime = (resp.headers.get("content-type") || "application/octet-stream").split(";")[0];
    setLink(link, new Blob(chunks, { type: mime }));
    link.download = "speech." + format;
    link.textContent = "Download " + format + " (" + (bytes / 1024).toFixed(0) + " KiB)";
    link.hidden = false;
    const length = seconds ? seconds.toFixed(1) + " s of audio, " : "";
    setStatus(status, "Done: " + length + (performance.now() - t0 > 0 ? ((performance.now() - t0) / 1000).toFixed(1) + " s in all." : ""), "ok");
  } catch (err) {
    if (err.name === "AbortError") setStatus(status, "Stopped.");
    else setStatus(status, err.message, "error");
  } finally {
    speak.controller = null;
    $("tts-go").disabled = false;
    $("tts-stop").disabled = true;
  }
}

function setupSpeak() {
  const speed = $("tts-speed");
  const out = $("tts-speed-out");
  speed.addEventListener("input", () => (out.value = Number(speed.value).toFixed(2) + "×"));
  $("tts-go").addEventListener("click", doSpeak);
  $("tts-stop").addEventListener("click", stopSpeaking);
  loadVoices();
}

// ---------------------------------------------------------------- Transcribe

const asr = { blob: null, name: "", segments: [], speakers: new Map(), duration: 0, controller: null, recorder: null };
const PALETTE = 8;

function speakerIndex(label) {
  if (!asr.speakers.has(label)) asr.speakers.set(label, asr.speakers.size % PALETTE);
  return asr.speakers.get(label);
}

function speakerName(label) {
  return /^[A-Z]$/.test(label) ? "Speaker " + label : label;
}

function chooseAudio(blob, name) {
  asr.blob = blob;
  asr.name = name;
  const audio = $("asr-audio");
  if (audio.src.startsWith("blob:")) URL.revokeObjectURL(audio.src);
  audio.src = URL.createObjectURL(blob);
  audio.hidden = false;
  asr.duration = 0;
  audio.addEventListener(
    "loadedmetadata",
    () => {
      if (Number.isFinite(audio.duration)) asr.duration = audio.duration;
    },
    { once: true },
  );
  $("asr-go").disabled = false;
  setStatus($("asr-status"), name + " ready.");
}

function resetTranscript() {
  asr.segments = [];
  asr.speakers = new Map();
  $("asr-out").replaceChildren();
  $("timeline").replaceChildren();
  $("timeline").hidden = true;
  $("asr-downloads").hidden = true;
}

function addSegment(seg) {
  const start = Number(seg.start) || 0;
  const end = Math.max(start, Number(seg.end) || start);
  const speaker = typeof seg.speaker === "string" && seg.speaker ? seg.speaker : "?";
  const text = String(seg.text ?? "").trim();
  const s = { start, end, speaker, text };
  asr.segments.push(s);
  const idx = speakerIndex(speaker);
  const li = el("li", "seg spk-" + idx);
  const meta = el("div", "meta");
  const time = el("button", "time", shortClock(start) + " – " + shortClock(end));
  time.type = "button";
  time.title = "Play from here";
  time.addEventListener("click", () => {
    const audio = $("asr-audio");
    audio.currentTime = start;
    audio.play().catch(() => {});
  });
  meta.append(el("span", "who", speakerName(speaker)), time);
  li.append(meta, el("p", "text", text));
  $("asr-out").append(li);
  drawTimeline();
}

function drawTimeline() {
  const box = $("timeline");
  const total = Math.max(asr.duration, ...asr.segments.map((s) => s.end), 0.001);
  box.replaceChildren();
  for (const [label, idx] of asr.speakers) {
    const lane = el("div", "lane");
    lane.append(el("span", "who spk-" + idx, speakerName(label)));
    const track = el("div", "track");
    for (const s of asr.segments) {
      if (s.speaker !== label) continue;
      const block = el("span", "block spk-" + idx);
      block.style.left = ((100 * s.start) / total).toFixed(3) + "%";
      block.style.width = Math.max(0.4, (100 * (s.end - s.start)) / total).toFixed(3) + "%";
      block.title = speakerName(label) + " " + shortClock(s.start) + "–" + shortClock(s.end);
      track.append(block);
    }
    lane.append(track);
    box.append(lane);
  }
  const axis = el("div", "axis");
  axis.append(el("span", "", "0:00"), el("span", "", shortClock(total)));
  box.append(axis);
  box.hidden = asr.segments.length === 0;
}

function toSrt(segments) {
  return segments
    .map((s, i) => i + 1 + "\n" + clock(s.start, ",") + " --> " + clock(s.end, ",") + "\n" + cueText(s) + "\n")
    .join("\n");
}

function toVtt(segments) {
  const esc = (t) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const cues = segments.map(
    (s) => clock(s.start, ".") + " --> " + clock(s.end, ".") + "\n<v " + esc(speakerName(s.speaker)) + ">" + esc(oneLine(s.text)) + "\n",
  );
  return "WEBVTT\n\n" + cues.join("\n");
}

function oneLine(text) {
  // A blank line would end a subtitle cue early.
  return text.replace(/\n\s*\n/g, "\n").replace(/-->/g, "->");
}

function cueText(s) {
  return "[" + speakerName(s.speaker) + "] " + oneLine(s.text);
}

function finishDownloads(fullText) {
  const segs = asr.segments;
  setLink($("dl-srt"), new Blob([toSrt(segs)], { type: "application/x-subrip" }));
  setLink($("dl-vtt"), new Blob([toVtt(segs)], { type: "text/vtt" }));
  const json = {
    task: "transcribe",
    duration: asr.duration,
    text: fullText,
    segments: segs.map((s, i) => ({ id: "seg_" + i, start: s.start, end: s.end, speaker: s.speaker, text: s.text })),
  };
  setLink($("dl-json"), new Blob([JSON.stringify(json, null, 2)], { type: "application/json" }));
  const base = (asr.name || "transcript").replace(/\.[^.]*$/, "");
  $("dl-srt").download = base + ".srt";
  $("dl-vtt").download = base + ".vtt";
  $("dl-json").download = base + ".json";
  $("asr-downloads").hidden = segs.length === 0;
}

async function doTranscribe() {
  if (!asr.blob) return;
  const status = $("asr-status");
  resetTranscript();
  const form = new FormData();
  form.append("model", "vibevoice-asr");
  form.append("file", asr.blob, asr.name || "audio");
  form.append("response_format", "diarized_json");
  form.append("stream", "true");
  const prompt = $("asr-prompt").value.trim();
  if (prompt) form.append("prompt", prompt);
  const lang = $("asr-lang").value.trim();
  if (lang) form.append("language", lang);
  asr.controller = new AbortController();
  $("asr-go").disabled = true;
  $("asr-stop").disabled = false;
  setStatus(status, "Uploading and transcribing…");
  const t0 = performance.now();
  let fullText = "";
  let failed = false;
  try {
    const resp = await fetch("/v1/audio/transcriptions", {
      method: "POST",
      headers: authHeaders(),
      body: form,
      signal: asr.controller.signal,
    });
    if (!resp.ok) throw new Error(await errorMessage(resp));
    for await (const ev of sseEvents(resp.body)) {
      if (!ev || typeof ev !== "object") continue;
      if (ev.type === "transcript.text.segment") {
        addSegment(ev);
        setStatus(status, asr.segments.length + " segment" + (asr.segments.length === 1 ? "" : "s") + "…");
      } else if (ev.type === "transcript.text.done") {
        fullText = String(ev.text ?? "");
        const secs = ev.usage && Number(ev.usage.seconds);
        if (secs) asr.duration = secs;
      } else if (ev.type === "error") {
        failed = true;
        setStatus(status, (ev.error && String(ev.error.message)) || "Transcription failed.", "error");
      }
    }
    if (!failed) {
      drawTimeline();
      finishDownloads(fullText);
      const took = ((performance.now() - t0) / 1000).toFixed(1);
      const who = asr.speakers.size;
      setStatus(
        status,
        asr.segments.length + " segment" + (asr.segments.length === 1 ? "" : "s") + ", " + who + " speaker" + (who === 1 ? "" : "s") + ", " + took + " s.",
        "ok",
      );
    }
  } catch (err) {
    if (err.name === "AbortError") setStatus(status, "Stopped.");
    else setStatus(status, err.message, "error");
  } finally {
    asr.controller = null;
    $("asr-go").disabled = !asr.blob;
    $("asr-stop").disabled = true;
  }
}

async function toggleRecording() {
  const button = $("asr-rec");
  if (asr.recorder) {
    asr.recorder.stop();
    return;
  }
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    setStatus($("asr-status"), "Recording needs a secure page (HTTPS or localhost) and a browser with MediaRecorder.", "error");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    setStatus($("asr-status"), "Microphone: " + err.message, "error");
    return;
  }
  const rec = new MediaRecorder(stream);
  const parts = [];
  rec.addEventListener("dataavailable", (e) => e.data.size && parts.push(e.data));
  rec.addEventListener("stop", () => {
    stream.getTracks().forEach((t) => t.stop());
    asr.recorder = null;
    button.textContent = "Record from microphone";
    button.classList.remove("recording");
    const type = rec.mimeType || "audio/webm";
    chooseAudio(new Blob(parts, { type }), "recording." + (type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm"));
  });
  rec.start(250);
  asr.recorder = rec;
  button.textContent = "Stop recording";
  button.classList.add("recording");
  setStatus($("asr-status"), "Recording… press Stop recording when done.");
}

function setupTranscribe() {
  $("asr-file").addEventListener("change", (e) => {
    const file = e.target.files && e.target.files[0];
    if (file) chooseAudio(file, file.name);
  });
  $("asr-rec").addEventListener("click", toggleRecording);
  $("asr-go").addEventListener("click", doTranscribe);
  $("asr-stop").addEventListener("click", () => asr.controller && asr.controller.abort());
}

// ---------------------------------------------------------------- Live

const live = { ws: null, ctx: null, stream: null, node: null, items: new Map(), pending: [], pendingLen: 0, sent: false };
const CHUNK_SAMPLES = RATE / 10; // 100 ms per input_audio_buffer.append

function toBase64(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

function liveItem(id) {
  const out = $("live-out");
  const empty = out.querySelector(".empty");
  if (empty) empty.remove();
  let p = live.items.get(id);
  if (!p) {
    p = el("p", "utterance partial");
    live.items.set(id, p);
    out.append(p);
  }
  return p;
}

function onLiveEvent(ev) {
  const state = $("live-state");
  switch (ev.type) {
    case "session.created":
    case "session.updated":
    case "transcription_session.created":
    case "transcription_session.updated":
      setStatus(state, "Listening…", "ok");
      break;
    case "input_audio_buffer.speech_started":
      setStatus(state, "Hearing speech…", "ok");
      break;
    case "input_audio_buffer.committed":
      live.sent = false;
      break;
    case "conversation.item.input_audio_transcription.delta": {
      const p = liveItem(String(ev.item_id));
      p.textContent += String(ev.delta ?? "");
      break;
    }
    case "conversation.item.input_audio_transcription.completed": {
      const p = liveItem(String(ev.item_id));
      p.textContent = String(ev.transcript ?? "");
      p.classList.remove("partial");
      if (!p.textContent.trim()) p.remove();
      setStatus(state, live.ws ? "Listening…" : "Stopped.", "ok");
      break;
    }
    case "conversation.item.input_audio_transcription.failed":
    case "error": {
      const err = ev.error || {};
      setStatus(state, String(err.message || "The session reported an error."), "error");
      break;
    }
    default:
      break;
  }
}

function sendAudio(force) {
  if (!live.ws || live.ws.readyState !== WebSocket.OPEN) return;
  if (!live.pendingLen || (!force && live.pendingLen < CHUNK_SAMPLES)) return;
  const pcm = new Int16Array(live.pendingLen);
  let at = 0;
  for (const f of live.pending) {
    for (let i = 0; i < f.length; i++) {
      const v = Math.max(-1, Math.min(1, f[i]));
      pcm[at++] = v < 0 ? v * 32768 : v * 32767;
    }
  }
  live.pending = [];
  live.pendingLen = 0;
  live.ws.send(JSON.stringify({ type: "input_audio_buffer.append", audio: toBase64(new Uint8Array(pcm.buffer)) }));
  live.sent = true;
}

async function startLive() {
  const state = $("live-state");
  const button = $("live-go");
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    setStatus(state, "Live transcription needs a secure page (HTTPS or localhost) and AudioWorklet support.", "error");
    return;
  }
  button.disabled = true;
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
    });
  } catch (err) {
    setStatus(state, "Microphone: " + err.message, "error");
    button.disabled = false;
    return;
  }
  live.ctx = new AudioContext({ sampleRate: RATE });
  await live.ctx.audioWorklet.addModule("/playground/pcm-worklet.js");
  const source = live.ctx.createMediaStreamSource(live.stream);
  live.node = new AudioWorkletNode(live.ctx, "pcm-capture");
  source.connect(live.node);
  const level = $("live-level");
  live.node.port.onmessage = (e) => {
    const frame = e.data;
    let sum = 0;
    for (let i = 0; i < frame.length; i++) sum += frame[i] * frame[i];
    level.style.width = Math.min(100, Math.sqrt(sum / frame.length) * 400).toFixed(0) + "%";
    live.pending.push(frame);
    live.pendingLen += frame.length;
    sendAudio(false);
  };

  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const key = $("api-key").value.trim();
  // Browsers cannot set headers on a WebSocket: the key travels as a subprotocol, as OpenAI's does.
  const protocols = key ? ["realtime", "openai-insecure-api-key." + key] : [];
  const ws = new WebSocket(scheme + location.host + "/v1/realtime?intent=transcription", protocols);
  live.ws = ws;
  setStatus(state, "Connecting…");
  ws.addEventListener("open", () => {
    const input = {
      format: { type: "audio/pcm", rate: RATE },
      transcription: { model: "vibevoice-asr" },
      turn_detection: { type: "server_vad" },
    };
    const prompt = $("asr-prompt").value.trim();
    if (prompt) input.transcription.prompt = prompt;
    ws.send(JSON.stringify({ type: "session.update", session: { type: "transcription", audio: { input } } }));
    button.disabled = false;
  });
  ws.addEventListener("message", (e) => {
    if (typeof e.data !== "string") return;
    let ev;
    try {
      ev = JSON.parse(e.data);
    } catch (_) {
      return;
    }
    if (ev && typeof ev === "object") onLiveEvent(ev);
  });
  ws.addEventListener("close", (e) => {
    if (live.ws === ws) stopLive(true);
    const state = $("live-state");
    if (!state.classList.contains("error") && e.code !== 1000 && e.code !== 1005) {
      setStatus(state, "Connection closed (" + e.code + (e.reason ? ": " + e.reason : "") + ").", "error");
    }
  });
  button.textContent = "Stop live transcription";
  button.setAttribute("aria-pressed", "true");
  button.classList.add("recording");
}

function stopLive(closed) {
  const button = $("live-go");
  if (live.node) live.node.port.onmessage = null;
  if (live.stream) live.stream.getTracks().forEach((t) => t.stop());
  if (live.ctx) live.ctx.close();
  live.stream = live.ctx = live.node = null;
  $("live-level").style.width = "0%";
  const ws = live.ws;
  live.ws = null;
  if (ws && !closed && ws.readyState === WebSocket.OPEN) {
    // Send what is left and ask for its transcript, then give the server a moment to answer.
    live.ws = ws;
    sendAudio(true);
    if (live.sent) ws.send(JSON.stringify({ type: "input_audio_buffer.commit" }));
    live.ws = null;
    const done = () => ws.readyState === WebSocket.OPEN && ws.close(1000);
    ws.addEventListener("message", (e) => {
      if (typeof e.data === "string" && e.data.includes("input_audio_transcription.completed")) setTimeout(done, 50);
    });
    setTimeout(done, 5000);
  }
  live.pending = [];
  live.pendingLen = 0;
  live.sent = false;
  button.textContent = "Start live transcription";
  button.setAttribute("aria-pressed", "false");
  button.classList.remove("recording");
  button.disabled = false;
  if (!$("live-state").classList.contains("error")) setStatus($("live-state"), "Stopped.");
}

function setupLive() {
  $("live-go").addEventListener("click", () => (live.ws ? stopLive(false) : startLive()));
}

// ---------------------------------------------------------------- start

setupKey();
setupSpeak();
setupTranscribe();
setupLive();
