"""The C header documents every export's contract (issue 10, "One contract layer").

include/fasts3.h is all a C, C++ or Go programmer reads. The `err` convention is written
once, in the doc of `fasts3_error`, and each fallible function's `# Safety` section points
there: these tests check that the pointer and the section it points to both exist, so that
shortening the per-function text can never silently drop what it said.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = ROOT / "include" / "fasts3.h"


def documented_declarations() -> list[tuple[str, str]]:
    """(doc comment, declaration) for each declaration of the header that ends in ';'."""
    pairs, doc, decl = [], [], []
    for line in HEADER.read_text().splitlines():
        stripped = line.strip()
        if decl:
            decl.append(stripped)
        elif stripped.startswith("//"):
            doc.append(stripped[2:].strip())
            continue
        elif stripped.startswith(("typedef", "enum", "struct", "void", "const", "int", "uint", "bool", "char")):
            decl = [stripped]
        else:
            doc = []
            continue
        if decl and decl[-1].endswith(";"):
            pairs.append(("\n".join(doc), " ".join(decl)))
            doc, decl = [], []
    return pairs


def functions() -> dict[str, tuple[str, str]]:
    found = {}
    for doc, decl in documented_declarations():
        m = re.match(r"[\w\s\*]*?\b(fasts3_\w+)\(", decl)
        if m and not decl.startswith("typedef"):
            found[m.group(1)] = (doc, decl)
    return found


def test_the_header_parses_into_every_export():
    funcs = functions()
    # The blocking API, the async API and the accessors: far more than a handful.
    assert len(funcs) > 60, sorted(funcs)
    for name in ("fasts3_get_into", "fasts3_submit_put_from", "fasts3_error_free", "fasts3_completion_take_bytes"):
        assert name in funcs, name
    undocumented = [name for name, (doc, _) in funcs.items() if not doc]
    assert not undocumented, f"exports without a doc comment: {undocumented}"


def test_every_fallible_export_states_its_err_contract_and_points_to_fasts3_error():
    funcs = functions()
    fallible = {n: (doc, decl) for n, (doc, decl) in funcs.items() if re.search(r"\bfasts3_error \*\*err\b", decl)}
    assert len(fallible) > 25, sorted(fallible)

    def safety_of(name: str, seen: tuple[str, ...] = ()) -> str:
        """The `# Safety` text of `name`, with that of the export it says "As for"."""
        doc = funcs[name][0]
        assert "# Safety" in doc, f"{name} has no # Safety section"
        safety = doc.split("# Safety", 1)[1]
        m = re.match(r"\s*(?:- )?As for `(fasts3_\w+)`", safety)
        if m and m.group(1) not in seen:
            return safety + "\n" + safety_of(m.group(1), seen + (name,))
        return safety

    for name, (doc, decl) in fallible.items():
        assert decl.endswith("fasts3_error **err);"), f"{name}: err is not the last parameter"
        safety = safety_of(name)
        assert re.search(r"`err` is NULL or points to a writable `fasts3_error \*`", safety), \
            f"{name}'s # Safety section does not state what `err` must be:\n{doc}"
        assert "(see `fasts3_error`)" in safety or "set to NULL on success" in safety, \
            f"{name} neither states the `err` convention nor points to where it is stated:\n{doc}"


def test_fasts3_error_doc_states_the_err_convention_the_exports_point_to():
    docs = {decl: doc for doc, decl in documented_declarations()}
    doc = " ".join(docs["typedef struct fasts3_error fasts3_error;"].split())
    # Everything each export's `err` paragraph used to say, said once here.
    for phrase in (
        "fasts3_error **err",
        "NULL when you do not want",
        "writable `fasts3_error *`",
        "NULL on success",
        "new error owned by the caller",
        "fasts3_error_free",
    ):
        assert phrase in doc, f"the fasts3_error doc does not say {phrase!r}:\n{doc}"


# Thread-use rule: the doc block of every export and every opaque handle says what threads may
# do with it, in a sentence labelled "Thread safety:", or refers to another export's with
# "thread safety as for `fasts3_...`" (that export then must have one).
THREAD_SAFETY = re.compile(r"\bThread safety:")
THREAD_SAFETY_AS_FOR = re.compile(r"\bthread safety as for `(fasts3_\w+)`", re.IGNORECASE)


def opaque_handles() -> dict[str, str]:
    """name -> doc of each `typedef struct fasts3_x fasts3_x;` (the handle types)."""
    found = {}
    for doc, decl in documented_declarations():
        m = re.fullmatch(r"typedef struct (fasts3_\w+) (\1);", decl)
        if m:
            found[m.group(1)] = doc
    return found


def states_thread_use(name: str, docs: dict[str, str], seen: tuple[str, ...] = ()) -> bool:
    doc = docs[name]
    if THREAD_SAFETY.search(doc):
        return True
    m = THREAD_SAFETY_AS_FOR.search(doc)
    return bool(m and m.group(1) in docs and m.group(1) not in seen
                and states_thread_use(m.group(1), docs, seen + (name,)))


def test_every_export_and_handle_states_what_threads_may_do_with_it():
    docs = {name: doc for name, (doc, _) in functions().items()}
    handles = opaque_handles()
    assert len(handles) >= 10, sorted(handles)
    assert "fasts3_client" in handles and "fasts3_completion" in handles
    docs.update(handles)
    missing = sorted(n for n in docs if not states_thread_use(n, docs))
    assert not missing, f"no 'Thread safety:' statement in the header doc of: {missing}"


def test_python_takes_the_header_constants_from_lib():
    """TO_END and DEFAULT_MAX_GAP come from the header's #defines (build.py mirrors them into
    the cffi declarations), so Python holds no copy that could drift."""
    from pyfasts3 import _lowlevel

    defines = dict(re.findall(r"^#define (FASTS3_\w+) (.+)$", HEADER.read_text(), re.M))
    assert defines["FASTS3_TO_END"] == "UINT64_MAX" and _lowlevel.lib.FASTS3_TO_END == 2**64 - 1
    assert _lowlevel.lib.FASTS3_DEFAULT_MAX_GAP == eval(defines["FASTS3_DEFAULT_MAX_GAP"])
    assert _lowlevel.TO_END == _lowlevel.lib.FASTS3_TO_END
    assert _lowlevel.DEFAULT_MAX_GAP == _lowlevel.lib.FASTS3_DEFAULT_MAX_GAP
    assert _lowlevel.lib.FASTS3_ABI_VERSION == _lowlevel.ABI_VERSION == _lowlevel.lib.fasts3_abi_version()
