"""The operator console in a real browser: sign in, submit a job, watch it live over gRPC-web, play the result.

Everything runs against the session stack through the gateway, which serves the console from the API's origin.
"""

from __future__ import annotations

import importlib.resources
import os
import re
from pathlib import Path
from typing import Any

import httpx
from aiorch.auth.v1 import tokens_pb2
from playwright.sync_api import FilePayload, Page, expect

from services.devstack.stack import LocalStack
from tests.browser.chromium import STEP_TIMEOUT_MS
from tests.real_speech import alsa_speech
from tests.support import Accounts, User, long_text, make_project, stopped_workers, tts_job, unique

WATCH_JOB = "/aiorch.jobs.v1.JobService/WatchJob"
GET_JOB = "/aiorch.jobs.v1.JobService/GetJob"
LIST_JOBS = "/aiorch.jobs.v1.JobService/ListJobs"
REFRESH = "/aiorch.auth.v1.TokenService/RefreshToken"
BLOB_URL = re.compile(r"^blob:")
NOT_FINAL = re.compile(r"^(PENDING|RUNNING)")
PERMISSION_DENIED_MESSAGE = re.compile(r"^Permission denied: ")
# Whisper tiny.en may mishear a word of the synthetic speech ("fog stumps"); the rest is stable.
# A portrait photograph shipped in scikit-image's wheel (the AI-stories engine's tests use it too).
PORTRAIT = Path(str(importlib.resources.files("skimage.data") / "astronaut.png"))
# What tests/real_speech.py's recording says; Whisper base writes it "Front, center, front, left, ...".
SPEAKERS = re.compile(r"front\W+center\W+front\W+left.*rear\W+right\W+side\W+left\W+side\W+right", re.IGNORECASE)
# A TTS text of a few sentences: spoken in parts, so the worker reports progress more than once.
SPEECH = " ".join(f"Sentence {i} of the console test is spoken clearly." for i in range(12))
# Records every value the job panel's progress bar shows, as the page sees it.
RECORD_PROGRESS = """() => {
  window.progressSeen = [];
  new MutationObserver(() => {
    const bar = document.querySelector('.job-panel [role=progressbar]');
    const value = bar && Number(bar.getAttribute('aria-valuenow'));
    if (bar && window.progressSeen.at(-1) !== value) window.progressSeen.push(value);
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['aria-valuenow']});
}"""
# Plays the result's audio or video element muted; resolves with its duration and where playback got to
# (within 5 s).
PLAY_MEDIA = """async (selector) => {
  const media = document.querySelector(selector);
  if (media.readyState < 1) await new Promise((resolve, reject) => {
    media.addEventListener('loadedmetadata', resolve, {once: true});
    media.addEventListener('error', () => reject(new Error('media error ' + media.error?.code)), {once: true});
  });
  media.muted = true;
  await media.play();
  // The media clock starts after the output device opens, which takes a moment on a busy machine.
  for (let waited = 0; media.currentTime === 0 && waited < 5000; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {duration: media.duration, currentTime: media.currentTime};
}"""


def log_in(page: Page, console_url: str, user: User) -> None:
    page.goto(console_url)
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("header .who")).to_contain_text(f"({user.role})")


def grpc_calls(requests: list[str], method: str) -> int:
    return sum(1 for url in requests if url.endswith(method))


def test_editor_submits_tts_and_plays_the_result_from_live_progress(
    page: Page, console_url: str, accounts: Accounts, http: httpx.Client, local_stack: LocalStack
) -> None:
    # Given an editor signed in through the console's form, with a project created in the console
    editor = accounts.create("editor")
    log_in(page, console_url, editor)
    project_name = unique("console-project")
    page.get_by_label("Name", exact=True).fill(project_name)
    with page.expect_response(lambda response: response.url.endswith(LIST_JOBS)):
        page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name=project_name)).to_be_visible()

    # When a TTS job is submitted, with every request and every progress value recorded
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.evaluate(RECORD_PROGRESS)
    page.get_by_label("Name (optional)").fill("greeting")
    page.get_by_label("Text", exact=True).fill(SPEECH)
    panel = page.locator(".job-panel")
    # The job waits until the panel's stream is open: on an idle machine it would otherwise be done (the
    # stream's first snapshot already 100 %) before the browser had asked for it.
    with stopped_workers(local_stack):
        page.get_by_role("button", name="Submit job").click()
        expect(panel.locator(".status")).to_have_attribute("data-state", "PENDING")

    # Then the progress bar reaches 100 % from the one live WatchJob stream, with no polling
    expect(panel.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100", timeout=90_000)
    expect(panel.locator(".status")).to_have_attribute("data-state", "COMPLETED")
    seen: list[int] = page.evaluate("() => window.progressSeen")
    assert seen[-1] == 100 and seen == sorted(seen), seen
    assert any(0 < value < 100 for value in seen), f"no progress between 0 and 100 arrived live: {seen}"
    assert grpc_calls(requests, WATCH_JOB) == 1, requests
    assert grpc_calls(requests, GET_JOB) == 0 and grpc_calls(requests, LIST_JOBS) == 0, requests
    expect(panel.locator(".log")).to_contain_text("speaking")

    # And the result plays in the page's audio element
    expect(panel.locator(".result audio")).to_have_attribute("src", BLOB_URL, timeout=15_000)
    playback: dict[str, float] = page.evaluate(PLAY_MEDIA, ".result audio")
    assert playback["duration"] > 1.0, playback
    assert playback["currentTime"] > 0, playback
    expect(panel.get_by_role("link", name="Download speech.wav")).to_be_visible()
    if os.environ.get("AIORCH_CONSOLE_SCREENSHOT"):
        page.screenshot(path=os.environ["AIORCH_CONSOLE_SCREENSHOT"])

    # And a job the server knows matches what the page showed
    job_id = panel.get_attribute("data-job-id")
    stored = http.get(f"/api/jobs/{job_id}/", headers=editor.headers).json()
    assert stored["status"] == "COMPLETED" and stored["progress"] == 100


def test_an_uploaded_recording_is_transcribed_and_the_transcript_shown(
    page: Page, console_url: str, accounts: Accounts, http: httpx.Client, tmp_path: Path
) -> None:
    # Given an editor with a recording of a man naming loudspeakers (real speech, not the platform's own voice)
    editor = accounts.create("editor")
    project = make_project(http, editor)
    recording = alsa_speech(tmp_path / "speakers.wav").read_bytes()

    # When the console uploads it as the input of an STT job
    log_in(page, console_url, editor)
    page.get_by_role("button", name=project["name"]).click()
    page.locator("#job-type").select_option(label="Speech to text (STT)")
    speakers: FilePayload = {"name": "speakers.wav", "mimeType": "audio/wav", "buffer": recording}
    page.locator("#input-file").set_input_files(files=speakers)
    uploads: list[str] = []
    page.on("request", lambda request: uploads.append(request.url) if "/api/files/" in request.url else None)
    page.get_by_role("button", name="Submit job").click()

    # Then the job completes from that upload and its transcript is on the page
    panel = page.locator(".job-panel")
    expect(panel.locator(".status")).to_have_attribute("data-state", "COMPLETED", timeout=90_000)
    expect(panel.get_by_role("figure", name="Transcript")).to_contain_text(SPEAKERS, timeout=STEP_TIMEOUT_MS)
    expect(panel.get_by_role("link", name="Download transcript.srt")).to_be_visible()
    assert len(uploads) == 1, uploads


def test_a_story_from_an_uploaded_portrait_plays_in_the_video_player(
    page: Page, console_url: str, accounts: Accounts, http: httpx.Client
) -> None:
    # Given an editor on a project in the console
    editor = accounts.create("editor")
    project = make_project(http, editor)
    log_in(page, console_url, editor)
    page.get_by_role("button", name=project["name"]).click()

    # When an AI story is submitted with a portrait uploaded from the page
    page.locator("#job-type").select_option(label="AI story (talking head from a portrait) (AI_STORIES)")
    page.get_by_label("Script", exact=True).fill("Hello there.")
    portrait: FilePayload = {"name": "astronaut.png", "mimeType": "image/png", "buffer": PORTRAIT.read_bytes()}
    page.locator("#input-file").set_input_files(files=portrait)
    page.get_by_role("button", name="Submit job").click()

    # Then the finished video plays in the page's video element
    panel = page.locator(".job-panel")
    expect(panel.locator(".status")).to_have_attribute("data-state", "COMPLETED", timeout=90_000)
    expect(panel.locator(".result video")).to_have_attribute("src", BLOB_URL)
    playback: dict[str, float] = page.evaluate(PLAY_MEDIA, ".result video")
    assert playback["duration"] > 0.5, playback  # "Hello there." is spoken in about 0.7 s
    assert playback["currentTime"] > 0, playback


def test_a_job_submitted_elsewhere_appears_in_the_list_and_finishes_live(
    page: Page, console_url: str, accounts: Accounts, http: httpx.Client
) -> None:
    # Given an editor looking at a project's (empty) job list
    editor = accounts.create("editor")
    project = make_project(http, editor)
    log_in(page, console_url, editor)
    with page.expect_response(lambda response: response.url.endswith(LIST_JOBS)):
        page.get_by_role("button", name=project["name"]).click()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    # When a job is created over REST (as a script or the CLI would)
    job = tts_job(http, editor, project["id"], "Made elsewhere.", name="from-a-script")

    # Then it appears in the list and reaches COMPLETED there from the WatchJobs stream, without a reload
    row = page.locator(f"tr[data-job-id='{job['id']}']")
    expect(row.locator(".state")).to_have_text("COMPLETED", timeout=60_000)
    expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    assert grpc_calls(requests, LIST_JOBS) == 0 and grpc_calls(requests, GET_JOB) == 0, requests


def test_a_refused_access_token_is_refreshed_transparently(
    page: Page, console_url: str, accounts: Accounts, http: httpx.Client
) -> None:
    # Given an editor on a project with one job, whose stored access token the server will refuse
    editor = accounts.create("editor")
    project = make_project(http, editor)
    tts_job(http, editor, project["id"], "Hello.", name="kept")
    log_in(page, console_url, editor)
    page.get_by_role("button", name=project["name"]).click()
    expect(page.locator("tr[data-job-id]")).to_have_count(1)
    mangled: str = page.evaluate(
        """() => {
          const token = sessionStorage.getItem('aiorch.access');
          const mangled = token.slice(0, -6) + (token.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA');
          sessionStorage.setItem('aiorch.access', mangled);
          return mangled;
        }"""
    )
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    # When the user searches the jobs
    page.get_by_label("Search", exact=True).fill("kept")
    page.get_by_role("button", name="Apply").click()

    # Then the list answers without any message, after one refresh of the token pair
    expect(page.locator("tr[data-job-id]")).to_have_count(1)
    assert grpc_calls(requests, REFRESH) == 1, requests
    assert page.evaluate("() => sessionStorage.getItem('aiorch.access')") != mangled
    expect(page.locator("#notice")).to_be_hidden()


def test_a_viewer_sees_no_write_controls_and_a_forged_write_is_refused(
    page: Page, console_url: str, accounts: Accounts, http: httpx.Client
) -> None:
    # Given a viewer who is a member of an editor's project with a running job
    editor = accounts.create("editor")
    viewer = accounts.create("viewer")
    project = make_project(http, editor)
    reply = http.post(
        f"/api/projects/{project['id']}/members/",
        json={"user_id": viewer.id, "role": "viewer"},
        headers=editor.headers,
    )
    assert reply.status_code == 200, reply.text
    job = tts_job(http, editor, project["id"], long_text(300), name="long")
    try:
        # When the viewer opens the project and the job in the console
        log_in(page, console_url, viewer)
        page.get_by_role("button", name=project["name"]).click()
        page.locator(f"tr[data-job-id='{job['id']}']").click()
        expect(page.locator(".job-panel .status")).to_have_attribute("data-state", NOT_FINAL)

        # Then no control that writes is on the page
        for name in ("Create project", "Submit job", "Cancel job"):
            expect(page.get_by_role("button", name=name)).to_have_count(0)
        expect(page.get_by_role("form", name="New project")).to_have_count(0)
        expect(page.get_by_role("form", name="New job")).to_have_count(0)

        # And a CreateProject forged from the page over gRPC-web with the viewer's token is refused
        forged = unique("forged")
        code: Any = page.evaluate(
            "name => window.aiorch.projects.createProject({name}).then(() => 'created', (error) => error.code)",
            forged,
        )
        assert code == 7, code  # PERMISSION_DENIED
        page.evaluate("name => { window.aiorch.projects.createProject({name}); }", forged)
        expect(page.locator("#notice")).to_have_text(PERMISSION_DENIED_MESSAGE)
        admin_view = http.get("/api/projects/", params={"search": forged}, headers=accounts.admin.headers).json()
        assert admin_view.get("projects", []) == []
    finally:
        http.post(f"/api/jobs/{job['id']}/cancel/", json={}, headers=editor.headers)


def test_a_wrong_password_gets_a_clear_message(page: Page, console_url: str, accounts: Accounts) -> None:
    viewer = accounts.create("viewer")
    page.goto(console_url)
    page.get_by_label("Username").fill(viewer.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#notice")).to_have_text(re.compile(r"^Not authenticated: \S"))
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_an_expired_session_sends_the_user_back_to_log_in_with_a_message(
    page: Page, console_url: str, accounts: Accounts
) -> None:
    # Given a signed-in viewer whose refresh token has been revoked (logged out elsewhere)
    viewer = accounts.create("viewer")
    log_in(page, console_url, viewer)
    refresh: str = page.evaluate("() => sessionStorage.getItem('aiorch.refresh')")
    accounts.tokens.RevokeToken(tokens_pb2.RevokeTokenRequest(refresh=refresh), metadata=viewer.metadata)
    page.evaluate("() => sessionStorage.setItem('aiorch.access', 'expired')")

    # When the user acts
    page.get_by_label("Search projects").fill("anything")

    # Then the login form is back with a clear message
    expect(page.locator("#notice")).to_have_text("Your session has expired. Please log in again.")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
