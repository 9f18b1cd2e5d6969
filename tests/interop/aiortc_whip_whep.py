#!/usr/bin/env python3
"""Interop test: aiortc (a third-party WebRTC stack) publishes over WHIP and watches over WHEP
through the real townhall relay.

Starts the `townhall` binary ($TOWNHALL_BIN, else target/debug/townhall), creates and starts a
meeting over the organizer API and checks the refusals (wrong/no studio token, garbage SDP,
unknown meeting; no peer left behind). Then viewer1 (aiortc WHEP) joins the empty stage; an
aiortc WHIP publisher sends a moving test picture in VP8 plus an Opus sine; viewer2 joins; both
viewers must decode >= 30 frames of the publisher's size in which the picture moves and >= 50
audio frames carrying the sine. The publisher leaves (DELETE) and an H264 publisher takes its
place: the same two viewers must decode it too. Finally the viewers' sessions are DELETEd, no
peer may remain and the server must stop cleanly on SIGTERM. Exit code 0 on success, 1 on
failure (with the tail of the server log).

Environment: TOWNHALL_BIN; INTEROP_TIMEOUT (seconds to wait for each condition, default 30);
INTEROP_CODECS (default VP8,H264); INTEROP_VERBOSE=1 (aiortc debug logs on stderr, str0m logs in
the server log); INTEROP_KEEP_LOGS=1 (keep the server log).
"""

import array
import asyncio
import fractions
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import av
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TIMEOUT = float(os.environ.get("INTEROP_TIMEOUT", "30"))
VERBOSE = os.environ.get("INTEROP_VERBOSE") == "1"

WIDTH, HEIGHT, FPS = 320, 240, 30
AUDIO_RATE, AUDIO_PTIME = 48000, 0.020
VIEWERS = 2
MIN_VIDEO_FRAMES, MIN_AUDIO_FRAMES = 30, 50
# VP8 is what the task asks for; H264 (aiortc's libx264) is the relay's other video codec.
CODECS = os.environ.get("INTEROP_CODECS", "VP8,H264").split(",")


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


# ---------------------------------------------------------------------------------------------
# HTTP (plain urllib in a thread: no extra dependency)


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body.decode())

    def text(self):
        return self.body.decode(errors="replace")


def _request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as res:
            return Reply(res.status, res.headers, res.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.headers, e.read())


async def http(method, url, body=None, headers=None):
    if isinstance(body, str):
        body = body.encode()
    return await asyncio.to_thread(_request, method, url, body, headers)


async def wait_for(what, predicate, timeout=TIMEOUT, interval=0.1):
    """Polls `predicate` (sync or async) until truthy; returns its value or fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


# ---------------------------------------------------------------------------------------------
# The server


class Server:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="townhall-interop-")
        self.admin_token = secrets.token_urlsafe(24)
        self.log_path = os.path.join(self.tmp, "server.log")
        self.proc = None
        self.base = None

    def start(self):
        binary = os.environ.get("TOWNHALL_BIN") or os.path.join(ROOT, "target", "debug", "townhall")
        check(os.access(binary, os.X_OK), f"no townhall binary at {binary} (cargo build --bin townhall)")
        env = dict(os.environ)
        env["TOWNHALL_ADMIN_TOKEN"] = self.admin_token
        env.setdefault(
            "TOWNHALL_LOG",
            "info,townhall_media=debug,str0m=info" if VERBOSE else "info,townhall_media=debug",
        )
        env["TOWNHALL_LOG_FORMAT"] = "pretty"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                binary, "serve",
                "--listen", "127.0.0.1:0",
                "--data-dir", os.path.join(self.tmp, "data"),
                "--media-bind-ip", "127.0.0.1",
                "--media-udp-port", "0",
                "--media-tcp-port", "0",
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
        )
        line = self.proc.stdout.readline().decode().strip()
        m = re.match(r"townhall listening on (http://\S+)", line)
        if not m:
            self.proc.kill()
            raise Failure(f"server did not start: first stdout line {line!r}\n{self.logs()}")
        self.base = m.group(1).rstrip("/")

    def logs(self, tail=80):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:])

    def stop(self):
        """SIGTERM; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "killed after 15 s"

    def cleanup(self, keep):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if keep:
            print(f"interop: server logs kept in {self.log_path}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    async def api(self, method, path, payload=None):
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        body = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(payload)
        return await http(method, self.base + path, body, headers)

    async def media_peers(self):
        """Sum of the townhall_media_peers gauge over all roles."""
        text = (await http("GET", self.base + "/metrics")).text()
        total = 0
        for line in text.splitlines():
            if line.startswith("townhall_media_peers"):
                total += float(line.rsplit(" ", 1)[1])
        return total


# ---------------------------------------------------------------------------------------------
# Synthetic media


class PatternVideoTrack(VideoStreamTrack):
    """A bright bar sweeping across a changing dark background (yuv420p), 30 fps: the bar's
    position in a decoded frame shows that the picture itself came through."""

    def __init__(self):
        super().__init__()
        self.count = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        n = self.count
        self.count += 1
        frame = av.VideoFrame(width=WIDTH, height=HEIGHT, format="yuv420p")
        # Luma: a vertical bright bar sweeping across a background whose brightness changes.
        y = frame.planes[0]
        bar = (n * 4) % WIDTH
        row = bytearray([(16 + (n * 3) % 100)] * y.line_size)
        for x in range(bar, min(bar + 24, WIDTH)):
            row[x] = 235
        y.update(bytes(row) * HEIGHT)
        # Chroma: colour changes over time.
        for i, plane in enumerate(frame.planes[1:]):
            value = 128 + int(60 * math.sin(n / 15 + i))
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


class SineAudioTrack(MediaStreamTrack):
    """A 440 Hz sine, 20 ms frames of 48 kHz mono s16, paced in real time."""

    kind = "audio"

    def __init__(self):
        super().__init__()
        self.start = None
        self.sample = 0

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        samples = int(AUDIO_RATE * AUDIO_PTIME)
        if self.start is None:
            self.start = time.time()
        else:
            self.sample += samples
            await asyncio.sleep(max(0.0, self.start + self.sample / AUDIO_RATE - time.time()))
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        pcm = bytearray()
        for i in range(samples):
            v = int(8000 * math.sin(2 * math.pi * 440 * (self.sample + i) / AUDIO_RATE))
            pcm += v.to_bytes(2, "little", signed=True)
        frame.planes[0].update(bytes(pcm))
        frame.pts = self.sample
        frame.sample_rate = AUDIO_RATE
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame


def bar_position(frame):
    """Where the bright bar is in the middle row of a decoded frame (None if none is seen)."""
    y = frame.planes[0]
    mid = frame.height // 2
    row = bytes(y)[mid * y.line_size: mid * y.line_size + frame.width]
    bright = [x for x, v in enumerate(row) if v > 200]
    return bright[0] // 4 * 4 if bright else None


def loudness(frame):
    """Peak of a decoded audio frame (aiortc decodes Opus to packed s16)."""
    if frame.format.name != "s16":
        return 0
    samples = array.array("h", bytes(frame.planes[0]))
    return max(map(abs, samples), default=0)


def answer_video_codec(sdp):
    """The codec of the first payload type of the answer's video m-line."""
    m = re.search(r"^m=video \d+ \S+ (\d+)", sdp, re.M)
    if not m:
        return None
    r = re.search(rf"^a=rtpmap:{m.group(1)} ([^/\s]+)/", sdp, re.M)
    return r.group(1) if r else None


def prefer(transceiver, kind, mime):
    """Codec preferences, as a normal aiortc user would set them (keeps RTX)."""
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in codecs if c.mimeType.lower() == mime.lower()]
    rtx = [c for c in codecs if c.mimeType.lower().endswith("/rtx")]
    transceiver.setCodecPreferences(chosen + rtx)


# ---------------------------------------------------------------------------------------------
# WHIP / WHEP clients


class Session:
    """One WHIP or WHEP session: the peer connection and its resource URL."""

    def __init__(self, name):
        self.name = name
        self.pc = RTCPeerConnection()
        self.location = None
        self.posted_at = None
        self.connected = asyncio.Event()
        self.failed = None

        @self.pc.on("connectionstatechange")
        async def on_state():
            state = self.pc.connectionState
            if VERBOSE:
                print(f"interop: {self.name} connection {state}", file=sys.stderr)
            if state == "connected":
                self.connected.set()
            elif state == "failed":
                self.failed = f"{self.name}: peer connection failed (ICE/DTLS)"

    async def offer(self):
        offer = await self.pc.createOffer()
        # aiortc gathers every candidate inside setLocalDescription: the offer is complete.
        await self.pc.setLocalDescription(offer)
        return self.pc.localDescription.sdp

    async def post(self, url, token=None):
        sdp = await self.offer()
        headers = {"Content-Type": "application/sdp"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.posted_at = time.monotonic()
        reply = await http("POST", url, sdp, headers)
        check(reply.status == 201, f"{self.name}: POST {url} -> {reply.status} {reply.text()}")
        check(
            reply.headers.get("Content-Type", "").startswith("application/sdp"),
            f"{self.name}: answer Content-Type {reply.headers.get('Content-Type')!r}",
        )
        location = reply.headers.get("Location")
        check(location, f"{self.name}: 201 without Location")
        self.location = urllib.parse.urljoin(url, location)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=reply.text(), type="answer"))
        return reply

    async def delete(self, token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        reply = await http("DELETE", self.location, None, headers)
        check(reply.status == 200, f"{self.name}: DELETE -> {reply.status} {reply.text()}")

    async def close(self):
        await self.pc.close()


class Viewer(Session):
    """A WHEP viewer decoding everything it receives; counters run per phase (`mark`)."""

    def __init__(self, name):
        super().__init__(name)
        self.errors = []
        self.tasks = []
        self.mark(time.monotonic())
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")

        @self.pc.on("track")
        def on_track(track):
            self.tasks.append(asyncio.ensure_future(self.consume(track)))

    def mark(self, since):
        """Starts a new phase: counts from zero, first frame measured from `since`."""
        self.since = since
        self.video_frames = 0
        self.audio_frames = 0
        self.loud_audio_frames = 0
        self.sizes = set()
        self.bar_positions = set()
        self.first_frame_at = None

    async def consume(self, track):
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    if frame.width > 0 and frame.height > 0:
                        self.video_frames += 1
                        self.sizes.add((frame.width, frame.height))
                        self.bar_positions.add(bar_position(frame))
                        if self.first_frame_at is None:
                            self.first_frame_at = time.monotonic()
                else:
                    if frame.samples > 0:
                        self.audio_frames += 1
                        if loudness(frame) > 2000:
                            self.loud_audio_frames += 1
        except MediaStreamError:
            pass  # track ended
        except Exception as e:  # noqa: BLE001 - reported as a failure
            self.errors.append(f"{self.name} {track.kind}: {e!r}")

    def time_to_first_frame(self):
        if self.first_frame_at is None:
            return None
        return self.first_frame_at - self.since

    def done(self):
        return (
            self.video_frames >= MIN_VIDEO_FRAMES
            and self.audio_frames >= MIN_AUDIO_FRAMES
        )


# ---------------------------------------------------------------------------------------------
# The test


async def negative_cases(server, meeting, token):
    whip = f"{server.base}/api/meetings/{meeting}/whip"

    # A real aiortc offer with a wrong studio token, and with none.
    s = Session("whip-wrong-token")
    s.pc.addTransceiver(PatternVideoTrack(), direction="sendonly")
    sdp = await s.offer()
    await s.close()
    r = await http("POST", whip, sdp, {"Content-Type": "application/sdp", "Authorization": "Bearer " + "x" * 22})
    check(r.status == 401 and r.json().get("code") == "bad_token", f"wrong token: {r.status} {r.text()}")
    r = await http("POST", whip, sdp, {"Content-Type": "application/sdp"})
    check(r.status == 401 and r.json().get("code") == "unauthorized", f"no token: {r.status} {r.text()}")

    # Garbage SDP with the right token.
    r = await http(
        "POST", whip, "this is not an SDP offer\r\n",
        {"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
    )
    check(r.status == 400 and r.json().get("code") == "bad_sdp", f"garbage SDP: {r.status} {r.text()}")
    check(r.json().get("message"), "bad_sdp without a reason")

    # WHEP for an unknown meeting.
    r = await http("POST", f"{server.base}/api/meetings/zzzzzzzzzz/whep", sdp, {"Content-Type": "application/sdp"})
    check(r.status == 404, f"WHEP unknown meeting: {r.status} {r.text()}")

    # None of them left a peer behind.
    peers = await server.media_peers()
    check(peers == 0, f"{peers} media peers after refused requests")


def connected_or_failed(s):
    def pred():
        if s.failed:
            raise Failure(s.failed)
        return s.connected.is_set()
    return pred


async def publish(server, meeting, studio_token, codec):
    """An aiortc WHIP publisher: the moving picture in `codec` and the Opus sine, send-only."""
    publisher = Session(f"publisher ({codec})")
    publisher.video = PatternVideoTrack()
    transceiver = publisher.pc.addTransceiver(publisher.video, direction="sendonly")
    if codec != "VP8":
        # aiortc offers VP8 first by default (the VP8 round keeps aiortc's default offer).
        prefer(transceiver, "video", f"video/{codec}")
    publisher.pc.addTransceiver(SineAudioTrack(), direction="sendonly")
    whip = f"{server.base}/api/meetings/{meeting}/whip?source=camera&label=aiortc"
    reply = await publisher.post(whip, studio_token)
    answer = reply.text()
    got = answer_video_codec(answer)
    check(got and got.upper() == codec, f"WHIP answer chose video codec {got}, want {codec}:\n{answer}")
    await wait_for(f"the {codec} publisher to connect", connected_or_failed(publisher))
    return publisher


async def stage_of(server, meeting):
    return (await http("GET", f"{server.base}/api/meetings/{meeting}/stage")).json()


async def watch(codec, publisher, viewers, results):
    """Every viewer decodes the publisher's picture and sound."""

    def all_done():
        for v in viewers:
            if v.errors:
                raise Failure("; ".join(v.errors))
        return all(v.done() for v in viewers)

    try:
        await wait_for(
            f"each viewer to decode >= {MIN_VIDEO_FRAMES} {codec} video and "
            f">= {MIN_AUDIO_FRAMES} audio frames",
            all_done,
        )
    except Failure as e:
        got = ", ".join(f"{v.name}: {v.video_frames} video, {v.audio_frames} audio" for v in viewers)
        raise Failure(f"{e} ({got}; the publisher produced {publisher.video.count} video frames)") from None
    for v in viewers:
        check(v.sizes == {(WIDTH, HEIGHT)}, f"{v.name} decoded sizes {v.sizes}, want {WIDTH}x{HEIGHT}")
        moving = v.bar_positions - {None}
        check(len(moving) >= 10, f"{v.name}: the picture does not move (bar at {sorted(moving)})")
        check(
            v.loud_audio_frames >= v.audio_frames // 2,
            f"{v.name}: only {v.loud_audio_frames} of {v.audio_frames} audio frames carry the sine",
        )
        results.append((codec, v.name, v.video_frames, v.audio_frames, v.time_to_first_frame()))


async def run(server, results):
    server.start()

    r = await server.api("POST", "/api/meetings", {"title": "aiortc interop"})
    check(r.status == 201, f"create meeting: {r.status} {r.text()}")
    meeting = r.json()["id"]
    studio_token = r.json()["studio_url"].split("#", 1)[1]
    r = await server.api("POST", f"/api/meetings/{meeting}/start")
    check(r.status == 200, f"start meeting: {r.status} {r.text()}")

    # Refusals.
    await negative_cases(server, meeting, studio_token)

    whep = f"{server.base}/api/meetings/{meeting}/whep"
    viewers = [Viewer(f"viewer{i + 1}") for i in range(VIEWERS)]
    publishers = []
    try:
        # viewer1 comes early: the stage is empty, its m-lines stay silent until a source arrives.
        await viewers[0].post(whep)
        await wait_for("viewer1 to connect", connected_or_failed(viewers[0]))

        for round_no, codec in enumerate(CODECS):
            # The viewers already there count this publisher's frames from its WHIP POST on.
            joined = viewers[:1] if round_no == 0 else viewers
            for v in joined:
                v.mark(time.monotonic())
            publisher = await publish(server, meeting, studio_token, codec)
            publishers.append(publisher)

            # The stage lists the source while media flows.
            async def on_stage():
                st = await stage_of(server, meeting)
                return st if any(s.get("video") and s.get("audio") for s in st["sources"]) else None

            stage = await wait_for("the stage to list the publisher with video and audio", on_stage)
            check(stage["live"] is True, f"stage not live: {stage}")
            source = stage["sources"][0]
            check(
                source["slot"] == 0 and source["source"] == "camera" and source["label"] == "aiortc",
                f"stage source: {source}",
            )

            if round_no == 0:
                # viewer1 waited for the source; viewer2 joins while it is on.
                await viewers[1].post(whep)
                viewers[1].mark(viewers[1].posted_at)
                await wait_for("viewer2 to connect", connected_or_failed(viewers[1]))

            await watch(codec, publisher, viewers, results)

            # The publisher ends its session: the source leaves the stage.
            await publisher.delete(studio_token)
            await publisher.close()
            stage = await stage_of(server, meeting)
            check(stage["sources"] == [], f"stage after the publisher's DELETE: {stage}")

        for v in viewers:
            await v.delete()
        # An ended session is gone (a trickle to it is 404).
        r = await http(
            "PATCH", viewers[0].location, "a=end-of-candidates\r\n",
            {"Content-Type": "application/trickle-ice-sdpfrag"},
        )
        check(r.status == 404, f"PATCH of an ended WHEP session: {r.status} {r.text()}")
        await wait_for("no media peers left", lambda: _no_peers(server))
    finally:
        for s in publishers + viewers:
            await s.close()
        for v in viewers:
            for t in v.tasks:
                t.cancel()

    code = server.stop()
    check(code == 0, f"server exit code after SIGTERM: {code}")


async def _no_peers(server):
    return await server.media_peers() == 0


def main():
    if VERBOSE:
        logging.basicConfig(level=logging.DEBUG)
    server = Server()
    results = []
    started = time.monotonic()
    ok = False
    try:
        asyncio.run(asyncio.wait_for(run(server, results), timeout=4 * TIMEOUT + 60))
        ok = True
    except Failure as e:
        print(f"interop FAILED: {e}", file=sys.stderr)
    except asyncio.TimeoutError:
        print("interop FAILED: the whole test timed out", file=sys.stderr)
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        print(f"interop FAILED: {e!r}", file=sys.stderr)
    if not ok:
        print("---- townhall server log (tail) ----", file=sys.stderr)
        print(server.logs(), file=sys.stderr)
    server.cleanup(keep=not ok or os.environ.get("INTEROP_KEEP_LOGS") == "1")
    if ok:
        parts = "; ".join(
            f"{codec} {name} {vf} video/{af} audio frames, first frame {ttff:.2f} s"
            for codec, name, vf, af, ttff in results
        )
        print(
            f"aiortc interop ok in {time.monotonic() - started:.1f} s "
            f"({'/'.join(CODECS)} {WIDTH}x{HEIGHT} + Opus, WHIP -> relay -> WHEP): {parts}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
