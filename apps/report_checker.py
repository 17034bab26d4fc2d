"""medmm report review app (Streamlit): worklist, study view, check now, export.

Run with ``medmm app --db audit.sqlite`` (``MEDMM_APP_CONFIG`` / ``MEDMM_APP_DB`` select the
config and store). The app only displays and collects decisions: checking is
``medmm.reports.check``, storage is ``medmm.audit.store.Store``, users and roles are
``medmm.app.auth``, the login's binding to the browser is ``medmm.app.sessions`` (served by
``medmm.app.server``: a plain ``streamlit run`` of this file serves only a notice), uploads are
``medmm.app.uploads``, rendering helpers are ``medmm.app.views`` and ``medmm.app.text``.
Report-derived text is always rendered as text (``st.text`` or escaped), never as Markdown.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time

import streamlit as st

from medmm.app import sessions
from medmm.app.auth import AppConfig, Session, allowed, load_users
from medmm.app.auth import login as check_login
from medmm.app.text import inert_html, md_escape
from medmm.app.uploads import UploadLimits, deidentify_upload, discard, keep, save_upload, sweep_pending
from medmm.app.views import boxes_for, draw_boxes, highlight, legend
from medmm.audit.store import DECISIONS, Store, StudyRecord
from medmm.reports.taxonomy import TYPE_IDS

CONFIG = AppConfig.load(os.environ.get("MEDMM_APP_CONFIG"))
DB = os.environ.get("MEDMM_APP_DB") or CONFIG.db
LABELS = {"true_error": "True error", "false_positive": "False positive", "uncertain": "Uncertain"}
if os.path.isfile(DB):
    sessions.REGISTRY.attach(DB)  # logins, back-off and the access log live in the store (issue 20)

st.set_page_config(page_title="medmm report review", layout="wide")


# ---------------------------------------------------------------- login (every page needs it)
def _session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def _binding() -> str | None:
    """The hash of this connection's session cookie; NO_CLIENT without a browser (AppTest); None
    when a browser came without medmm's cookie (the app was not started by ``medmm app``)."""
    if not len(st.context.headers):
        return sessions.NO_CLIENT
    token = sessions.cookie_token(st.context.cookies.to_dict())
    return sessions.token_hash(token) if token else None


def end_session(message: str | None = None, revoke: bool = False) -> None:
    """Forget everything this tab held (login, pages, Check-now text and results, pending uploads)."""
    old = st.session_state.get("session")
    if revoke and old is not None:
        sessions.REGISTRY.revoke(old.token_hash, "logout" if revoke is True else str(revoke))
        sessions.REGISTRY.log("logout" if revoke is True else "session_ended", old.user, client=_client(),
                              detail=None if revoke is True else {"reason": str(revoke)})
    sessions.REGISTRY.unbind(_session_id())
    checked = st.session_state.get("checked")
    if checked:
        discard(checked.get("pending"))
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if message:
        st.session_state["_notice"] = message


def _client() -> str | None:
    """The client address (medmm's server took it from a trusted proxy's X-Forwarded-For, or the peer)."""
    try:
        ip = st.context.ip_address
    except Exception:  # noqa: BLE001 - no network client (AppTest)
        return None
    return ip if isinstance(ip, str) else None


def login(binding: str) -> None:
    st.title("medmm report review")
    notice = st.session_state.pop("_notice", None)
    if notice:
        st.warning(notice)
    if CONFIG.sso_header and binding != sessions.NO_CLIENT:  # trusted-header sign-on: the proxy logs users in
        st.info("Sign in through the hospital's sign-on page, then reload this page.")
        return
    with st.form("login"):
        user = st.text_input("User name", key="login_user", max_chars=64)
        password = st.text_input("Password", type="password", key="login_password", max_chars=256)
        submitted = st.form_submit_button("Log in")
    if submitted:
        name = user.strip()
        result = check_login(CONFIG.users_file, name, password, _client(), sessions.REGISTRY.throttle)
        known = name if name in load_users(CONFIG.users_file) else "-"  # never keep a password typed as a name
        if result.ok and binding != sessions.NO_CLIENT:
            # N1: the login never adopts the browser's current token: the server issues a new one
            # (/_medmm/login with a one-time nonce bound to this cookie), then the page reloads logged in
            end_session()
            nonce = sessions.REGISTRY.begin_rotation(binding, name, result.role, "password", _client())
            st.html(f"""<script>window.location.replace(new URL("_medmm/login?r={nonce}", window.location.href));
</script>""", unsafe_allow_javascript=True)
            st.markdown(f"Logging in… [continue](_medmm/login?r={nonce})")
            st.stop()
        elif result.ok:  # no browser (Streamlit's AppTest): nothing to rotate
            now = time.time()
            end_session()
            st.session_state["session"] = Session(name, result.role, now, now, binding)
            sessions.REGISTRY.start_login(binding, name, result.role, "password", now)
            sessions.REGISTRY.bind_session(_session_id(), binding)
            sessions.REGISTRY.log("login", name, client=_client(), detail={"method": "password"})
            st.rerun()
        elif result.wait_seconds > 0:
            sessions.REGISTRY.log("login_throttled", known, client=_client(), detail={"wait": round(result.wait_seconds)})
            st.error(f"Too many failed logins: try again in {result.wait_seconds:.0f} s.")
        else:
            sessions.REGISTRY.log("login_failed", known, client=_client(), detail={"method": "password"})
            st.error("Wrong user name or password.")


BINDING = _binding()
if BINDING is None:
    st.error("This review app must be started with `medmm app` (it binds each login to a cookie that only "
             "medmm's server sets). Nothing is served otherwise.")
    st.stop()
session: Session | None = st.session_state.get("session")
if session is None and BINDING != sessions.NO_CLIENT:  # this browser's token logged in (rotation, sign-on, restart)
    _known = sessions.REGISTRY.login(BINDING)
    if _known is not None:
        session = Session(_known.user, _known.role, time.time(), _known.started, BINDING)
        st.session_state["session"] = session
if session is not None:
    problem = sessions.session_problem(session, BINDING, load_users(CONFIG.users_file), CONFIG)
    if problem:
        mine = BINDING == session.token_hash  # a login bound to another browser is not this tab's to end
        end_session(problem)
        if mine and sessions.REGISTRY.login(session.token_hash) is not None:
            sessions.REGISTRY.revoke(session.token_hash, problem)
            sessions.REGISTRY.log("session_ended", session.user, client=_client(), detail={"reason": problem})
        session = None
if session is None:
    login(BINDING)
    st.stop()
session.touch()
sessions.REGISTRY.touch(session.token_hash)
sessions.REGISTRY.bind_session(_session_id(), session.token_hash)

# The page blanks itself after the idle timeout (PHI does not stay on an unattended screen);
# the reload then shows the login form. Each rerun restarts the timer.
st.html(f"""<script>
clearTimeout(window.__medmmIdle);
window.__medmmIdle = setTimeout(function () {{
  document.body.textContent = "Session ended after inactivity.";  /* no markup here: the sanitizer drops it */
  window.location.reload();
}}, {int(CONFIG.session_timeout_minutes * 60 * 1000)});
/* {time.time()} */
</script>""", unsafe_allow_javascript=True)

if not os.path.isfile(DB):
    st.error(f"No review store at {DB}. Run `medmm audit ... --db {DB}` first, or start the app with --db.")
    st.stop()
store = Store(DB)


def go(page: str, study: str | None = None) -> None:
    st.session_state["page"] = page
    if study is not None:
        st.session_state["study"] = study


with st.sidebar:
    st.markdown(f"**{md_escape(session.user)}** ({session.role})")
    st.radio("Page", ["Worklist", "Study", "Check now", "Export"], key="page")
    if st.button("Log out", key="logout"):
        end_session("You are logged out.", revoke=True)
        st.rerun()

configs = store.configurations()
if len(configs) > 1:  # results of different checker configurations are never mixed in one worklist
    with st.sidebar:
        labels = {c["config_key"]: f"{c['checker']} · {c['config_key'][:8]} · {c['results']} studies" for c in configs}
        default_key = store.latest_config_key()
        st.selectbox("Configuration", list(labels), format_func=labels.get,
                     index=list(labels).index(default_key) if default_key in labels else 0, key="config_key")
config_key = st.session_state.get("config_key") or store.latest_config_key()
items = store.worklist(config_key)
keys = [i["study_key"] for i in items]
page = st.session_state.get("page", "Worklist")


# ---------------------------------------------------------------- worklist
def worklist() -> None:
    st.header("Worklist")
    c1, c2, c3, c4 = st.columns(4)
    types = c1.multiselect("Flag type", TYPE_IDS, key="f_types")
    min_conf = c2.slider("Minimum confidence", 0.0, 1.0, 0.0, 0.05, key="f_conf")
    modalities = sorted({i["modality"] for i in items if i["modality"]})
    mods = c3.multiselect("Modality", modalities, key="f_mod")
    states = c4.multiselect("Status", ["unreviewed", "flagged", "reviewed"], key="f_state")
    runs = sorted({i["run_id"] for i in items if i["run_id"] is not None})
    run = st.selectbox("Run", ["all"] + runs, key="f_run")
    rows = [i for i in items
            if (not types or set(types) & set(i["flag_types"]))
            and (i["max_confidence"] or 0) >= min_conf
            and (not mods or i["modality"] in mods)
            and (not states or i["state"] in states)
            and (run == "all" or i["run_id"] == run)]
    st.caption(f"{len(rows)} of {len(items)} studies, riskiest first")
    st.dataframe([{"study": r["study_key"], "status": r["state"], "score": round(r["score"] or 0, 3),
                   "flags": r["n_flags"], "types": ", ".join(r["flag_types"]), "modality": r["modality"],
                   "run": r["run_id"]} for r in rows], hide_index=True, width="stretch")
    if rows:
        choice = st.selectbox("Open study", [r["study_key"] for r in rows], key="open_choice")
        st.button("Open", key="open_study", on_click=go, args=("Study", choice))


# ---------------------------------------------------------------- study
@st.cache_resource(max_entries=8)
def _volume(path: str):  # noqa: ANN202 - a medmm Volume or an error message
    from medmm.errors import MedmmError
    from medmm.imaging import load_volume

    try:
        return load_volume(path)
    except MedmmError as exc:
        return str(exc)


def image_viewer(study: dict) -> None:
    from medmm.app.views import acquisition_slice
    from medmm.imaging.views import WINDOW_CHOICES

    images = [p for p in study["images"] if not p.endswith((".nii.gz", ".nii")) or "_labels" not in p]
    if not images:
        st.info("No image for this study.")
        return
    # never show a path or file name to a reviewer: folders are often named after the patient
    idx = st.selectbox("Series / image", range(len(images)), format_func=lambda i: f"Image {i + 1} of {len(images)}",
                       key=f"series_{study['study_key']}")
    vol = _volume(images[idx])
    if isinstance(vol, str):
        st.warning(f"Image {idx + 1} cannot be shown (the file is missing or cannot be read). "
                   "An administrator can check it with `medmm info`.")
        return
    window = st.selectbox("Window", list(WINDOW_CHOICES) + ["custom"], index=list(WINDOW_CHOICES).index("file"),
                          key="window")
    if window == "custom":
        c1, c2 = st.columns(2)
        window = (c1.number_input("Center", value=40.0, key="wc"), c2.number_input("Width", value=400.0, min_value=1.0,
                                                                                 key="ww"))
    n = vol.shape[2]
    index = st.slider("Slice", 0, n - 1, n // 2, key=f"slice_{study['study_key']}_{idx}") if n > 1 else 0
    try:
        img = acquisition_slice(vol, index, window=window)
    except Exception as exc:  # a display problem must not end the review
        st.warning(f"This slice cannot be rendered ({type(exc).__name__}).")
        return
    boxes = boxes_for(study["regions"], idx, index if n > 1 else None, geometry=vol)
    show = st.checkbox("Show known regions", value=True, key="show_boxes") if study["regions"] else False
    st.image(draw_boxes(img, boxes if show else []), width="stretch",
             caption=f"{vol.modality or ''} slice {index + 1}/{n}")


def study_page() -> None:
    if not keys:
        st.info("The store has no checked studies yet.")
        return
    key = st.session_state.get("study") or keys[0]
    if key not in keys:
        key = keys[0]
    pos = keys.index(key)
    c1, c2, c3 = st.columns([1, 1, 4])
    c1.button("← Previous", key="prev", disabled=pos == 0, on_click=go, args=("Study", keys[max(pos - 1, 0)]),
              shortcut="Alt+Left", help="Alt+Left")
    c2.button("Next →", key="next", disabled=pos == len(keys) - 1, on_click=go,
              args=("Study", keys[min(pos + 1, len(keys) - 1)]), shortcut="Alt+Right", help="Alt+Right")
    c3.markdown(f"### Study {key}  ({pos + 1} of {len(keys)})")
    study = store.study(key, config_key)
    if study is None:
        st.error("Study not found.")
        return
    if st.session_state.get("_viewed") != key:  # the access log: who opened which study when (once per opening)
        store.record_access("view", session.user, study_key=key, client=_client())
        st.session_state["_viewed"] = key
    left, right = st.columns([1, 1])
    with left:
        image_viewer(study)
    with right:
        st.markdown(legend(sorted({f["type"] for f in study["flags"]})), unsafe_allow_html=True)
        st.markdown(inert_html(highlight(study["report"] or "", study["flags"])), unsafe_allow_html=True)
        st.caption(md_escape(f"Header: modality {study['modality']}, body part {study['body_part']}, "
                             f"sex {study['patient_sex']}"))
        for note in study.get("notes") or []:  # e.g. a rule that raised: the check was incomplete
            st.warning(md_escape(f"Checker note: {note}"))
        if not study["flags"]:
            st.success("No flags on this study.")
        pending = [f for f in study["flags"] if f["decision"] is None]
        if pending:
            first = pending[0]
            st.caption(f"Quick decision for the first undecided flag ({md_escape(first['type'])}): Alt+T true "
                       "error, Alt+F false positive, Alt+U uncertain")
            q1, q2, q3 = st.columns(3)
            for col, (decision, shortcut) in zip((q1, q2, q3), (("true_error", "Alt+T"), ("false_positive", "Alt+F"),
                                                                ("uncertain", "Alt+U"))):
                if col.button(LABELS[decision], key=f"quick_{decision}", shortcut=shortcut, help=shortcut) \
                        and allowed(session.role, "review"):
                    store.add_review(session.user, decision, flag_id=first["id"])
                    st.rerun()
        for f in study["flags"]:
            with st.container(border=True):
                st.markdown(f"**{md_escape(f['type'])}** · confidence {f['confidence']:.2f} · evidence "
                            f"{md_escape(f['evidence'])} · current decision: **{LABELS.get(f['decision'], 'none')}**")
                st.text(f["text"])  # report text: shown as text, never Markdown (no remote images, no links)
                st.text(f["explanation"])
                choice = st.radio("Decision", DECISIONS, format_func=LABELS.get, horizontal=True, index=None,
                                  key=f"dec_{f['id']}")
                comment = st.text_input("Comment", key=f"com_{f['id']}")
                if st.button("Save decision", key=f"save_{f['id']}") and allowed(session.role, "review"):
                    if choice is None:
                        st.warning("Choose a decision first.")
                    else:
                        store.add_review(session.user, choice, flag_id=f["id"], comment=comment or None)
                        st.rerun()
        st.markdown("**Study verdict**" + (f": {LABELS[study['verdict']]}" if study["verdict"] else ""))
        verdict = st.radio("Verdict", DECISIONS, format_func=LABELS.get, horizontal=True, index=None, key="verdict")
        if st.button("Save verdict", key="save_verdict") and verdict and allowed(session.role, "review"):
            store.add_review(session.user, verdict, study_key=key)
            st.rerun()
        history = store.history(key)
        if history:
            st.markdown("**Review history**")
            st.dataframe([{**h, "at": time.strftime("%Y-%m-%d %H:%M", time.localtime(h["at"]))} for h in history],
                         hide_index=True, width="stretch")


# ---------------------------------------------------------------- check now
UPLOAD_ROOT = os.path.join(os.path.dirname(os.path.abspath(DB)), "uploads")
LIMITS = UploadLimits(CONFIG.upload_max_expanded_mb * 2**20, CONFIG.upload_max_members, CONFIG.upload_max_ratio)


@st.cache_resource(max_entries=2)
def _checker(kind: str, model: str | None):  # noqa: ANN202 - a medmm.reports checker
    """Built once per server for the app's configuration (a VLM is not reloaded on every click), from the
    same run identity the saved results are keyed by."""
    from medmm.audit.runner import checker_for, run_config

    return checker_for(run_config(kind, model))


def check_now() -> None:
    from medmm.audit.runner import run_config
    from medmm.errors import InputError
    from medmm.imaging import header_facts

    st.header("Check now")
    may_upload = allowed(session.role, "check_upload")
    upload = None
    if may_upload:
        upload = st.file_uploader("Image: a DICOM file, a zip of a series, a NIfTI or a PNG",
                                  type=["dcm", "zip", "nii", "gz", "png", "jpg", "jpeg"], key="upload")
    else:
        st.caption("Only admins can check an image with the report (uploads are stored on the server).")
    report = st.text_area("Report", height=220, key="paste_report", max_chars=100_000)
    if st.button("Check", key="run_check") and report.strip() and allowed(session.role, "check_text"):
        previous = st.session_state.pop("checked", None)
        if previous:
            discard(previous.get("pending"))  # an unsaved upload of an earlier check
        sweep_pending(UPLOAD_ROOT)
        pending = None
        images: list[str] = []
        if upload is not None and may_upload:
            try:
                saved = save_upload(upload.getvalue(), upload.name, UPLOAD_ROOT, LIMITS)
            except InputError as exc:
                st.error(str(exc))
                return
            if CONFIG.deid_uploads:  # PS3.15 before anything reads or keeps the files
                try:
                    saved = deidentify_upload(saved, UPLOAD_ROOT, store.salt.hex())
                except InputError as exc:
                    st.error(str(exc))
                    return
            pending, images = saved.folder, list(saved.images)
        try:
            header = header_facts(images) if images else None
            result = _checker(CONFIG.checker, CONFIG.model).check(report, header)
        except BaseException:
            discard(pending)
            raise
        if not allowed(session.role, "save_checked"):
            discard(pending)  # nobody can save it: the upload ends with the check
            pending, images = None, []
        st.session_state["checked"] = {"report": report, "images": images, "header": header, "result": result,
                                       "pending": pending}
    checked = st.session_state.get("checked")
    if checked:
        res = checked["result"]
        flags = [{**f.as_dict(), "id": i} for i, f in enumerate(res.flags)]
        st.markdown(("**Error suspected**" if res.has_error else "**No error found**") + f" (score {res.score:.2f})")
        st.markdown(legend(sorted({f["type"] for f in flags})), unsafe_allow_html=True)
        st.markdown(inert_html(highlight(checked["report"], flags)), unsafe_allow_html=True)
        for f in flags:
            st.markdown(f"- **{md_escape(f['type'])}** ({f['confidence']:.2f}, {md_escape(f['evidence'])})")
            st.text(f["explanation"])
        for note in res.notes:
            st.caption(md_escape(f"note: {note}"))
        if not allowed(session.role, "save_checked"):
            st.caption("Only admins can save checked studies into the store.")
        elif st.button("Save into the store", key="save_checked") and allowed(session.role, "save_checked"):
            source = "upload:" + hashlib.sha256((checked["report"] + str(checked["images"])).encode()).hexdigest()
            images, folder = checked["images"], None
            if checked.get("pending"):
                kept = keep(_pending_upload(checked), UPLOAD_ROOT, hashlib.sha256(source.encode()).hexdigest()[:16])
                images, folder = list(kept.images), kept.folder
            run_id, saved_key = store.start_run(run_config(CONFIG.checker, CONFIG.model))
            store.record_result(run_id, saved_key, StudyRecord(source, folder, checked["header"], checked["report"],
                                                                tuple(images)), res)
            store.finish_run(run_id)
            st.session_state["checked"] = {**checked, "pending": None}
            st.success(f"Saved as study {store.study_key(source)}.")


def _pending_upload(checked: dict):  # noqa: ANN202 - an Upload
    from medmm.app.uploads import Upload

    return Upload(checked["pending"], tuple(checked["images"]))


# ---------------------------------------------------------------- export
def export_page() -> None:
    from medmm.audit.runner import export

    st.header("Export")
    reviewed = st.checkbox("Reviewed flags only", value=True, key="x_reviewed")
    full = allowed(session.role, "export_full")
    redact = st.checkbox("Redacted (no report text, explanations or reviewer names)", key="x_deid",
                         value=not full, disabled=not full)
    if not full:
        st.caption("Reviewers export redacted files only; an admin can export report text and reviewer names.")
        redact = True  # enforced here, whatever the browser sent
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "flags.csv")
        n = export(DB, out, reviewed_only=reviewed, redact=redact, config_key=config_key)  # never with paths
        with open(out, "rb") as fh:
            st.download_button(f"Download {n} flag(s) as CSV", fh.read(), file_name="medmm-flags.csv", key="x_download",
                               on_click=sessions.REGISTRY.log, args=("export", session.user),
                               kwargs={"client": _client(), "detail": {"rows": n, "redacted": bool(redact),
                                                                       "reviewed_only": bool(reviewed)}})


{"Worklist": worklist, "Study": study_page, "Check now": check_now, "Export": export_page}[page]()
store.close()
