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

import functools
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
from medmm.app.views import blank, boxes_for, draw_labelled, highlight, legend, regions_for_flag, series_choices
from medmm.app.evidence import evidence_line, is_image_flag, region_boxes, region_target
from medmm.audit.store import DECISIONS, Store, StudyRecord
from medmm.audit.worklist import PAGE_SIZE, STATES, WorklistFilter
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
        labels = {c["config_key"]: f"{c['checker']} · {c['config_key'][:8]} · {c['results']:,} studies" for c in configs}
        default_key = store.latest_config_key()
        st.selectbox("Configuration", list(labels), format_func=labels.get,
                     index=list(labels).index(default_key) if default_key in labels else 0, key="config_key")
config_key = st.session_state.get("config_key") or store.latest_config_key()
# The worklist is asked for ONE page and the counts (medmm.audit.worklist): a hospital-year is a million
# studies and every click reruns this script.
WL = store.worklist_view(config_key)
page = st.session_state.get("page", "Worklist")


def current_filter() -> WorklistFilter:
    """The worklist filter the reviewer set (kept outside the widgets: the study page follows it too)."""
    return st.session_state.get("wl_filter") or WorklistFilter()


def open_study(key: str, position: int | None = None) -> None:
    go("Study", key)
    st.session_state["study_pos"] = position
    st.session_state["wl_visit"] = st.session_state.get("wl_visit", 0) + 1  # the table comes back unselected


# ---------------------------------------------------------------- worklist
def _filter_from_widgets() -> WorklistFilter:
    run = st.session_state.get("f_run", "all")
    return WorklistFilter(types=tuple(st.session_state.get("f_types") or ()),
                          min_confidence=float(st.session_state.get("f_conf") or 0.0),
                          modalities=tuple(st.session_state.get("f_mod") or ()),
                          states=tuple(st.session_state.get("f_state") or ()),
                          run_id=None if run in (None, "all") else int(run))


def _restore_filter_widgets() -> None:
    """Widgets forget their values on a page they are not drawn on: put the saved filter back."""
    flt = current_filter()
    defaults = {"f_types": list(flt.types), "f_conf": flt.min_confidence, "f_mod": list(flt.modalities),
                "f_state": list(flt.states), "f_run": "all" if flt.run_id is None else flt.run_id}
    for k, v in defaults.items():
        if k not in st.session_state:
            st.session_state[k] = v


def _cursor(action: str) -> None:
    cur = dict(st.session_state.get("wl_cursor") or {"after": None, "before": None, "last": False, "page_no": 0})
    shown = st.session_state.get("wl_shown") or {}
    if action == "first":
        cur = {"after": None, "before": None, "last": False, "page_no": 0}
    elif action == "next":
        cur = {"after": shown.get("last_key"), "before": None, "last": False, "page_no": cur["page_no"] + 1}
    elif action == "prev":
        cur = {"after": None, "before": shown.get("first_key"), "last": False, "page_no": max(0, cur["page_no"] - 1)}
    elif action == "last":
        cur = {"after": None, "before": None, "last": True, "page_no": max(0, (shown.get("matching", 1) - 1) // PAGE_SIZE)}
    st.session_state["wl_cursor"] = cur


def _open_picked(table_key: str, keys: list[str], start: int) -> None:
    """The worklist table's selection (a row or a cell) opens that row's study."""
    selection = (st.session_state.get(table_key) or {}).get("selection") or {}
    picked = list(selection.get("rows") or []) + [c[0] for c in selection.get("cells") or []]
    if picked and 0 <= int(picked[0]) < len(keys):
        open_study(keys[int(picked[0])], start + int(picked[0]) + 1)


def worklist() -> None:
    st.header("Worklist")
    _restore_filter_widgets()
    c1, c2, c3, c4, c5 = st.columns([3, 2, 2, 3, 1])
    c1.multiselect("Flag type", TYPE_IDS, key="f_types")
    c2.slider("Minimum confidence", 0.0, 1.0, step=0.05, key="f_conf")
    c3.multiselect("Modality", WL.modalities(), key="f_mod")
    c4.multiselect("Status", list(STATES), key="f_state")
    c5.selectbox("Run", ["all"] + WL.run_ids(), key="f_run")
    flt = _filter_from_widgets()
    if flt != st.session_state.get("wl_filter"):  # a new filter starts at the first page
        st.session_state["wl_filter"] = flt
        _cursor("first")
    cur = st.session_state.get("wl_cursor") or {"after": None, "before": None, "last": False, "page_no": 0}
    counts = WL.counts(flt)
    if cur["last"]:
        pg = WL.last_page(flt)
    else:
        pg = WL.page(flt, after=cur["after"], before=cur["before"])
    if cur["before"] is not None and not pg.has_prev:
        cur = {**cur, "page_no": 0}
    start = cur["page_no"] * PAGE_SIZE
    st.session_state["wl_shown"] = {"first_key": pg.first_key, "last_key": pg.last_key, "matching": counts.matching}
    by_state = " · ".join(f"{s} {counts.by_state[s]:,}" for s in STATES if counts.by_state.get(s))
    st.caption(f"{counts.matching:,} of {counts.total:,} studies, riskiest first ({by_state}). "
               "Click a row to open the study.")
    rows = list(pg.rows)
    table = [{"Accession": blank(r.accession_number), "Exam date": blank(r.exam_date),
              "Description": blank(r.exam_description), "Modality": blank(r.modality), "Status": r.state,
              "Flags": r.n_flags, "Types": ", ".join(r.flag_types), "Top confidence": blank(r.max_confidence, 2),
              "Score": blank(r.score, 2), "Study": r.study_key} for r in rows]
    # a click on a row's box or on any of its cells opens the study (in a callback: the page radio is set
    # before it is drawn)
    table_key = f"wl_table_{st.session_state.get('wl_visit', 0)}"
    st.dataframe(table, hide_index=True, width="stretch",
                 on_select=functools.partial(_open_picked, table_key, [r.study_key for r in rows], start),
                 selection_mode=["single-row", "single-cell"],
                 key=table_key, height=min(38 + 35 * max(1, len(rows)), 560))
    n1, n2, n3, n4, n5 = st.columns([1, 1, 2, 1, 1])
    n1.button("« First", key="wl_first", on_click=_cursor, args=("first",), disabled=not pg.has_prev)
    n2.button("← Page", key="wl_prev", on_click=_cursor, args=("prev",), disabled=not pg.has_prev)
    n3.markdown(f"rows {start + 1 if rows else 0:,}–{start + len(rows):,} of {counts.matching:,}")
    n4.button("Page →", key="wl_next", on_click=_cursor, args=("next",), disabled=not pg.has_next)
    n5.button("Last »", key="wl_last", on_click=_cursor, args=("last",), disabled=not pg.has_next)
    if rows:  # the keyboard way in (the rows of this page only, never a list of every study)
        labels = {r.study_key: " · ".join(x for x in (blank(r.accession_number), blank(r.exam_date),
                                                      blank(r.exam_description), r.state) if x) or r.study_key
                  for r in rows}
        o1, o2 = st.columns([4, 1])
        choice = o1.selectbox("Open a study of this page", list(labels), format_func=labels.get, key="open_choice")
        o2.button("Open", key="open_study", on_click=open_study,
                  args=(choice, start + [r.study_key for r in rows].index(choice) + 1))


# ---------------------------------------------------------------- study
@st.cache_resource(max_entries=8)
def _volume(path: str):  # noqa: ANN202 - a medmm Volume or an error message
    from medmm.audit.store import image_path_problem
    from medmm.errors import MedmmError
    from medmm.imaging import load_volume

    problem = image_path_problem(path)  # swapped for a symlink after the audit: never followed
    if problem:
        return problem
    try:
        return load_volume(path)
    except MedmmError as exc:
        return str(exc)


@st.cache_data(max_entries=256, show_spinner=False)
def _facts(path: str):  # noqa: ANN202 - HeaderFacts or None (header only: the series' name)
    from medmm.imaging import header_facts

    try:
        return header_facts([path])
    except Exception:  # noqa: BLE001 - a name is not worth an error: the viewer reports unreadable images
        return None


def show_region(study_key: str, image: int, slice_index: int | None, flag_id: int | None) -> None:
    """Point the viewer at a region: its series and (one-based) slice; its flag's boxes drawn in yellow."""
    st.session_state[f"series_{study_key}"] = image
    if slice_index is not None:
        st.session_state[f"slice_{study_key}_{image}"] = int(slice_index) + 1
    st.session_state["focus_flag"] = flag_id


def image_viewer(study: dict, links: dict[int, list[int]]) -> None:
    from medmm.app.views import acquisition_slice
    from medmm.imaging.views import WINDOW_CHOICES

    choices = dict(series_choices(study["images"], _facts))
    if not choices:
        st.info("No image for this study.")
        return
    key = study["study_key"]
    if st.session_state.get(f"series_{key}") not in choices:
        st.session_state[f"series_{key}"] = next(iter(choices))
    # names come from the header (PA, Lateral, CT series), never from a path: folders carry patients' names
    s1, s2 = st.columns([3, 2])
    idx = s1.selectbox("Series", list(choices), format_func=choices.get, key=f"series_{key}")
    vol = _volume(study["images"][idx])
    if isinstance(vol, str):
        st.warning(f"{choices[idx]} cannot be shown (the file is missing or cannot be read). "
                   "An administrator can check it with `medmm info`.")
        return
    window = s2.selectbox("Window", list(WINDOW_CHOICES) + ["custom"], index=list(WINDOW_CHOICES).index("file"),
                          key="window")
    if window == "custom":
        c1, c2 = st.columns(2)
        window = (c1.number_input("Center", value=40.0, key="wc"), c2.number_input("Width", value=400.0, min_value=1.0,
                                                                                 key="ww"))
    n = vol.shape[2]
    skey = f"slice_{key}_{idx}"
    if n > 1:
        if not 1 <= int(st.session_state.get(skey, 0) or 0) <= n:
            st.session_state[skey] = n // 2 + 1
        number = st.slider("Slice", 1, n, key=skey)  # one-based, as a radiologist counts
    else:
        number = 1
    try:
        img = acquisition_slice(vol, number - 1, window=window)
    except Exception as exc:  # a display problem must not end the review
        st.warning(f"This slice cannot be rendered ({type(exc).__name__}).")
        return
    focus = st.session_state.get("focus_flag")
    flagged_regions = {i for f_id, regs in links.items() if f_id == focus for i in regs}
    shown = []
    for i, r in enumerate(study["regions"]):
        for box in boxes_for([r], idx, number - 1 if n > 1 else None, geometry=vol):
            shown.append((box, f"{i + 1} {(r.get('label') or 'region').replace('_', ' ')}", i in flagged_regions))
    show = st.checkbox("Show known regions", value=True, key="show_boxes") if study["regions"] else False
    # the regions VLM flags point at (issue 18): always drawn, the focused flag's in yellow
    model_regions = region_boxes(study["flags"], idx, number - 1 if n > 1 else None, geometry=vol, focus=focus)
    st.image(draw_labelled(img, (shown if show else []) + model_regions), width="stretch",
             caption=f"{choices[idx]} · {blank(vol.modality)} · slice {number} of {n}")
    if study["regions"]:  # every region of the study, where it is (one-based slices) and the flags about it
        by_region = {i: [f_id for f_id, regs in links.items() if i in regs] for i in range(len(study["regions"]))}
        lines = []
        for i, r in enumerate(study["regions"]):
            where = choices.get(int(r.get("image") or 0), "another image")
            sl = f", slice {int(r['slice']) + 1}" if r.get("slice") is not None else ""
            about = f" — flag {', '.join('#' + str(f) for f in by_region[i])}" if by_region[i] else ""
            lines.append(f"{i + 1}. {(r.get('label') or 'region').replace('_', ' ')} ({where}{sl}){about}")
        st.caption(md_escape(" · ".join(lines)))


def _nav(key: str, flt: WorklistFilter) -> None:
    pos = st.session_state.get("study_pos")
    prev_key = WL.neighbour(key, flt, step=-1)
    next_key = WL.neighbour(key, flt, step=1)
    next_flag = WL.neighbour(key, flt, unreviewed_flag=True, wrap=True)
    c1, c2, c3, c4 = st.columns([1, 1, 2, 2])
    c1.button("← Previous", key="prev", disabled=prev_key is None, on_click=open_study,
              args=(prev_key or key, pos - 1 if pos and prev_key else None), shortcut="Alt+Left", help="Alt+Left")
    c2.button("Next →", key="next", disabled=next_key is None, on_click=open_study,
              args=(next_key or key, pos + 1 if pos and next_key else None), shortcut="Alt+Right", help="Alt+Right")
    c3.button("Next unreviewed flag »", key="next_flag", disabled=next_flag is None, on_click=open_study,
              args=(next_flag or key, None), shortcut="Alt+N",
              help="Alt+N: the next study in this worklist with a flag nobody has decided")
    c4.button("Back to the worklist", key="to_worklist", on_click=go, args=("Worklist",))


def _flag_card(f: dict, number: int, key: str, regions: list[dict], region_ids: list[int]) -> None:
    """One flag: what, how sure, on what evidence, the decision. Compact: a laptop screen holds it whole."""
    with st.container(border=True):
        decision = LABELS.get(f["decision"], "not decided")
        st.markdown(f"**#{f['id']} {md_escape(f['type'])}** · confidence {f['confidence']:.2f} · evidence "
                    f"{md_escape(f['evidence'])} · current decision: **{decision}**")
        st.text(f"“{f['text']}” — {f['explanation']}")  # report text: shown as text, never Markdown
        if is_image_flag(f):  # issue 18: a VLM flag says which model read the image, and shows its region
            st.caption(md_escape(evidence_line(f)))
            target = region_target(f)
            if target is not None:
                st.button("Show the model's region", key=f"vlm_region_{f['id']}", on_click=show_region,
                          args=(key, target[0], target[1], f["id"]))
        if region_ids:
            r = regions[region_ids[0]]
            label = ", ".join(f"{i + 1} {(regions[i].get('label') or 'region').replace('_', ' ')}" for i in region_ids)
            st.button(f"Show on image: {label}", key=f"show_{f['id']}", on_click=show_region,
                      args=(key, int(r.get("image") or 0), r.get("slice"), f["id"]))
        choice = st.radio("Decision", DECISIONS, format_func=LABELS.get, horizontal=True, index=None,
                          key=f"dec_{f['id']}", label_visibility="collapsed")
        d1, d2 = st.columns([3, 2], vertical_alignment="bottom")
        comment = d1.text_input("Comment", key=f"com_{f['id']}", placeholder="Comment (optional)",
                                label_visibility="collapsed")
        if d2.button("Save decision", key=f"save_{f['id']}", width="stretch") and allowed(session.role, "review"):
            if choice is None:
                st.warning("Choose a decision first.")
            else:
                store.add_review(session.user, choice, flag_id=f["id"], comment=comment or None)
                st.rerun()


def study_page() -> None:
    flt = current_filter()
    key = st.session_state.get("study")
    row = WL.row(key) if key else None
    if row is None:  # no study chosen (or not in this configuration): the first of the worklist
        first = WL.page(flt, limit=1).rows or WL.page(limit=1).rows
        if not first:
            st.info("The store has no checked studies yet.")
            return
        key, row = first[0].study_key, first[0]
        st.session_state["study"], st.session_state["study_pos"] = key, 1
    _nav(key, flt)
    pos = st.session_state.get("study_pos")
    where = f"{pos:,} of {WL.counts(flt).matching:,}" if pos else ""
    title = " · ".join(x for x in (blank(row.accession_number), blank(row.exam_date), blank(row.exam_description))
                       if x)
    st.markdown(f"### Study {key}" + (f"  ({where})" if where else ""))
    if title:
        st.caption(md_escape(f"Accession · exam date · description: {title}"))
    study = store.study(key, config_key)
    if study is None:
        st.error("Study not found.")
        return
    if st.session_state.get("_viewed") != key:  # the access log: who opened which study when (once per opening)
        store.record_access("view", session.user, study_key=key, client=_client())
        st.session_state["_viewed"] = key
    report = study["report"] or ""
    links = {f["id"]: regions_for_flag(report, f, study["regions"]) for f in study["flags"]}
    left, right = st.columns([4, 5])  # the report and its flag cards get the wider half (laptop screens)
    with left:
        image_viewer(study, links)
    with right:
        st.markdown(f"**{row.state}** · score {blank(row.score, 2)} · {row.n_flags} flag(s)")
        st.markdown(legend(sorted({f["type"] for f in study["flags"]})), unsafe_allow_html=True)
        st.markdown(inert_html(highlight(report, study["flags"])), unsafe_allow_html=True)
        st.caption(md_escape(" · ".join(f"{label} {blank(study.get(k))}" for label, k in (
            ("modality", "modality"), ("body part", "body_part"), ("sex", "patient_sex"), ("view", "view_position"))
            if blank(study.get(k)))) or "no header facts")
        for note in study.get("notes") or []:  # e.g. a rule that raised: the check was incomplete
            st.warning(md_escape(f"Checker note: {note}"))
        if not study["flags"]:
            st.success("No flags on this study.")
        pending = [f for f in study["flags"] if f["decision"] is None]
        if pending:
            first = pending[0]
            st.caption(f"Quick decision for the first undecided flag (#{first['id']} {md_escape(first['type'])})")
            q1, q2, q3 = st.columns([1, 1.3, 1])
            for col, (decision, shortcut) in zip((q1, q2, q3), (("true_error", "Alt+T"), ("false_positive", "Alt+F"),
                                                                ("uncertain", "Alt+U"))):
                if col.button(LABELS[decision], key=f"quick_{decision}", shortcut=shortcut, help=shortcut) \
                        and allowed(session.role, "review"):
                    store.add_review(session.user, decision, flag_id=first["id"])
                    st.rerun()
        for n, f in enumerate(study["flags"], start=1):
            _flag_card(f, n, key, study["regions"], links[f["id"]])
        v1, v2 = st.columns([4, 1], vertical_alignment="bottom")
        verdict = v1.radio("Study verdict" + (f" (now: {LABELS[study['verdict']]})" if study["verdict"] else ""),
                           DECISIONS, format_func=LABELS.get, horizontal=True, index=None, key="verdict")
        if v2.button("Save verdict", key="save_verdict") and verdict and allowed(session.role, "review"):
            store.add_review(session.user, verdict, study_key=key)
            st.rerun()
        history = store.history(key)
        if history:
            with st.expander(f"Review history ({len(history)})"):
                st.dataframe([{**{k: blank(v) for k, v in h.items()},
                               "at": time.strftime("%Y-%m-%d %H:%M", time.localtime(h["at"]))} for h in history],
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
