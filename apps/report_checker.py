"""medmm report review app (Streamlit): worklist, study view, check now, export.

Run with ``medmm app --db audit.sqlite`` (or ``streamlit run apps/report_checker.py`` with
``MEDMM_APP_CONFIG`` / ``MEDMM_APP_DB`` set). The app only displays and collects decisions:
checking is ``medmm.reports.check``, storage is ``medmm.audit.store.Store``, users are
``medmm.app.auth``, rendering helpers are ``medmm.app.views``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import zipfile

import streamlit as st

from medmm.app.auth import AppConfig, Session, authenticate, load_users
from medmm.app.views import boxes_for, draw_boxes, highlight, legend
from medmm.audit.store import DECISIONS, Store, StudyRecord
from medmm.reports.taxonomy import TYPE_IDS

CONFIG = AppConfig.load(os.environ.get("MEDMM_APP_CONFIG"))
DB = os.environ.get("MEDMM_APP_DB") or CONFIG.db
LABELS = {"true_error": "True error", "false_positive": "False positive", "uncertain": "Uncertain"}

st.set_page_config(page_title="medmm report review", layout="wide")


# ---------------------------------------------------------------- login (every page needs it)
def login() -> None:
    st.title("medmm report review")
    with st.form("login"):
        user = st.text_input("User name", key="login_user")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        role = authenticate(load_users(CONFIG.users_file), user.strip(), password)
        if role:
            st.session_state["session"] = Session(user.strip(), role, time.time())
            st.rerun()
        else:
            st.error("Wrong user name or password.")


session: Session | None = st.session_state.get("session")
if session is not None and session.expired(CONFIG.session_timeout_minutes):
    del st.session_state["session"]
    session = None
    st.warning("Your session expired after inactivity; please log in again.")
if session is None:
    login()
    st.stop()
session.touch()

if not os.path.isfile(DB):
    st.error(f"No review store at {DB}. Run `medmm audit ... --db {DB}` first, or start the app with --db.")
    st.stop()
store = Store(DB)


def go(page: str, study: str | None = None) -> None:
    st.session_state["page"] = page
    if study is not None:
        st.session_state["study"] = study


with st.sidebar:
    st.markdown(f"**{session.user}** ({session.role})")
    st.radio("Page", ["Worklist", "Study", "Check now", "Export"], key="page")
    if st.button("Log out", key="logout"):
        del st.session_state["session"]
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
    left, right = st.columns([1, 1])
    with left:
        image_viewer(study)
    with right:
        st.markdown(legend(sorted({f["type"] for f in study["flags"]})), unsafe_allow_html=True)
        st.markdown(highlight(study["report"] or "", study["flags"]), unsafe_allow_html=True)
        st.caption(f"Header: modality {study['modality']}, body part {study['body_part']}, sex {study['patient_sex']}")
        if not study["flags"]:
            st.success("No flags on this study.")
        pending = [f for f in study["flags"] if f["decision"] is None]
        if pending:
            first = pending[0]
            st.caption(f"Quick decision for the first undecided flag ({first['type']}): Alt+T true error, "
                       "Alt+F false positive, Alt+U uncertain")
            q1, q2, q3 = st.columns(3)
            for col, (decision, shortcut) in zip((q1, q2, q3), (("true_error", "Alt+T"), ("false_positive", "Alt+F"),
                                                                ("uncertain", "Alt+U"))):
                if col.button(LABELS[decision], key=f"quick_{decision}", shortcut=shortcut, help=shortcut):
                    store.add_review(session.user, decision, flag_id=first["id"])
                    st.rerun()
        for f in study["flags"]:
            with st.container(border=True):
                st.markdown(f"**{f['type']}** · confidence {f['confidence']:.2f} · evidence {f['evidence']} · "
                            f"current decision: **{LABELS.get(f['decision'], 'none')}**")
                st.markdown(f"> {f['text']}")
                st.caption(f["explanation"])
                choice = st.radio("Decision", DECISIONS, format_func=LABELS.get, horizontal=True, index=None,
                                  key=f"dec_{f['id']}")
                comment = st.text_input("Comment", key=f"com_{f['id']}")
                if st.button("Save decision", key=f"save_{f['id']}"):
                    if choice is None:
                        st.warning("Choose a decision first.")
                    else:
                        store.add_review(session.user, choice, flag_id=f["id"], comment=comment or None)
                        st.rerun()
        st.markdown("**Study verdict**" + (f": {LABELS[study['verdict']]}" if study["verdict"] else ""))
        verdict = st.radio("Verdict", DECISIONS, format_func=LABELS.get, horizontal=True, index=None, key="verdict")
        if st.button("Save verdict", key="save_verdict") and verdict:
            store.add_review(session.user, verdict, study_key=key)
            st.rerun()
        history = store.history(key)
        if history:
            st.markdown("**Review history**")
            st.dataframe([{**h, "at": time.strftime("%Y-%m-%d %H:%M", time.localtime(h["at"]))} for h in history],
                         hide_index=True, width="stretch")


# ---------------------------------------------------------------- check now
def check_now() -> None:
    from medmm.audit.runner import run_config
    from medmm.imaging import header_facts
    from medmm.reports import check

    st.header("Check now")
    upload = st.file_uploader("Image: a DICOM file, a zip of a series, a NIfTI or a PNG",
                              type=["dcm", "zip", "nii", "gz", "png", "jpg", "jpeg"], key="upload")
    report = st.text_area("Report", height=220, key="paste_report")
    if st.button("Check", key="run_check") and report.strip():
        folder = None
        images: list[str] = []
        if upload is not None:
            data = upload.getvalue()
            digest = hashlib.sha256(data + report.encode()).hexdigest()[:16]
            folder = os.path.join(os.path.dirname(os.path.abspath(DB)), "uploads", digest)
            os.makedirs(folder, exist_ok=True)
            if upload.name.lower().endswith(".zip"):
                with tempfile.TemporaryDirectory() as tmp:
                    path = os.path.join(tmp, "u.zip")
                    with open(path, "wb") as fh:
                        fh.write(data)
                    with zipfile.ZipFile(path) as z:
                        for member in z.namelist():
                            if ".." in member or member.startswith("/"):
                                continue  # no paths out of the upload folder
                            z.extract(member, os.path.join(folder, "series"))
                images = [os.path.join(folder, "series")]
            else:
                path = os.path.join(folder, os.path.basename(upload.name))
                with open(path, "wb") as fh:
                    fh.write(data)
                images = [path]
        header = header_facts(images) if images else None
        run = run_config(CONFIG.checker, CONFIG.model)
        result = check(report, header=header, checker=CONFIG.checker, model=CONFIG.model, threshold=run["threshold"])
        st.session_state["checked"] = {"report": report, "images": images, "header": header, "result": result,
                                       "folder": folder}
    checked = st.session_state.get("checked")
    if checked:
        res = checked["result"]
        flags = [{**f.as_dict(), "id": i} for i, f in enumerate(res.flags)]
        st.markdown(("**Error suspected**" if res.has_error else "**No error found**") + f" (score {res.score:.2f})")
        st.markdown(legend(sorted({f["type"] for f in flags})), unsafe_allow_html=True)
        st.markdown(highlight(checked["report"], flags), unsafe_allow_html=True)
        for f in flags:
            st.markdown(f"- **{f['type']}** ({f['confidence']:.2f}, {f['evidence']}): {f['explanation']}")
        for note in res.notes:
            st.caption(f"note: {note}")
        if session.role != "admin":
            st.caption("Only admins can save checked studies into the store.")
        elif st.button("Save into the store", key="save_checked"):
            run_id, saved_key = store.start_run(run_config(CONFIG.checker, CONFIG.model))
            source = "upload:" + hashlib.sha256((checked["report"] + str(checked["images"])).encode()).hexdigest()
            store.record_result(run_id, saved_key, StudyRecord(source, checked["folder"], checked["header"],
                                                                checked["report"], tuple(checked["images"])), res)
            store.finish_run(run_id)
            st.success(f"Saved as study {store.study_key(source)}.")


# ---------------------------------------------------------------- export
def export_page() -> None:
    from medmm.audit.runner import export

    st.header("Export")
    reviewed = st.checkbox("Reviewed flags only", value=True, key="x_reviewed")
    redact = st.checkbox("Redacted (no report text, explanations or reviewer names)", key="x_deid")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "flags.csv")
        n = export(DB, out, reviewed_only=reviewed, redact=redact, config_key=config_key)  # never with paths
        with open(out, "rb") as fh:
            st.download_button(f"Download {n} flag(s) as CSV", fh.read(), file_name="medmm-flags.csv", key="x_download")


{"Worklist": worklist, "Study": study_page, "Check now": check_now, "Export": export_page}[page]()
store.close()
