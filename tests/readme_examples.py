#!/usr/bin/env python3
"""Runs every example of the READMEs as written (make test-readme), so that they cannot drift.

    python3 tests/readme_examples.py [README.md ...]   (default: README.md, bindings/*/README.md)

Each fenced block is taken by its info string (the words after the opening fence):

- ``c``: a complete program, compiled with cc against the built library as the top-level README
  shows (include/, the static archive of target/release or $CARGO_TARGET_DIR/release) and run.
- ``python``: run with the Python of APMNET_PYTHON_VENV (the test venv, where the package is
  installed from its wheel; default: this Python); then all of them together through
  ``mypy --strict`` when that venv has mypy.
- ``csharp``: compiled with Mono's mcs against Apmnet.dll (built from bindings/dotnet/src, with
  libapmnet.so copied beside it) and run on .NET 8 (bindings/dotnet/dotnet.sh) with the
  runtimeconfig the README shows.
- ``sh setup``: shell lines run (bash -e) before the examples that follow, in the same folder.
- ``json file=NAME`` (or any language with ``file=NAME``): written to NAME in that folder.
- a ``fragment`` word anywhere, ``sh``/``console``/``text`` and the rest: not run (counted as
  skipped).

Every README's blocks run in a fresh temporary folder of their own, in order, each with a time
limit (APMNET_README_VERBOSE=1 prints what they print). Ends with "readme: N passed, N failed, N
skipped"; exits 1 if any failed.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIME_LIMIT = 120  # seconds for one example: only a hang guard
FENCE = re.compile(r"^(```+)\s*(.*)$")


def blocks(path):
    """(line number, info words, text) of each fenced block."""
    found, lines = [], open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info, start = match.group(1), match.group(2).split(), i + 1
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            i += 1
        found.append((start, info, "\n".join(lines[start:i]) + "\n"))
        i += 1
    return found


def run(command, cwd, env=None, what=""):
    """Runs ``command``; returns None on success, else the failure's text."""
    try:
        done = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=TIME_LIMIT)
    except subprocess.TimeoutExpired as timeout:
        return f"{what}: no end after {TIME_LIMIT} s\n{(timeout.stdout or b'').decode(errors='replace')}"
    if done.returncode != 0:
        return f"{what}: exit code {done.returncode}\n{done.stdout.decode(errors='replace')}"
    if os.environ.get("APMNET_README_VERBOSE"):
        print(done.stdout.decode(errors="replace"), end="")
    return None


class Toolchains:
    """What the examples are built and run with, set up on first use."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.python = os.environ.get("APMNET_PYTHON_VENV") or sys.executable
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
        self.release = os.path.join(target, "release")
        self._dotnet = None

    def c_command(self, source, binary):
        return ["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", source, "-I" + os.path.join(ROOT, "include"),
                os.path.join(self.release, "libapmnet.a"), "-lssl", "-lcrypto", "-lpthread", "-ldl", "-lm",
                "-o", binary]

    def python_env(self):
        env = dict(os.environ)
        env.pop("APMNET_LIBRARY", None)  # the installed package's own library, as a user has it
        env.pop("PYTHONPATH", None)
        return env

    def has_mypy(self):
        return subprocess.run([self.python, "-c", "import mypy"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0

    def dotnet(self):
        """(environment with APMNET_DOTNET..., folder with Apmnet.dll and libapmnet.so)."""
        if self._dotnet is None:
            cache = os.environ.get("APMNET_PEERS_CACHE") or os.path.expanduser("~/.cache/apmnet-peers")
            exports = subprocess.run(["bash", os.path.join(ROOT, "bindings", "dotnet", "dotnet.sh"), cache],
                                     check=True, stdout=subprocess.PIPE, text=True).stdout
            env = dict(os.environ)
            env.pop("APMNET_LIBRARY", None)  # libapmnet.so beside Apmnet.dll, as the README says
            for name, value in re.findall(r"(\w+)=(\S+)", exports):
                env[name] = value
            folder = os.path.join(self.scratch, "dotnet")
            os.makedirs(folder)
            sources = sorted(glob.glob(os.path.join(ROOT, "bindings", "dotnet", "src", "*.cs")))
            subprocess.run(["mcs", "-nologo", "-target:library", "-r:System.dll", "-r:System.Core.dll",
                            "-out:" + os.path.join(folder, "Apmnet.dll")] + sources, check=True)
            shutil.copy(os.path.join(self.release, "libapmnet.so"), folder)
            self._dotnet = env, folder
        return self._dotnet


def run_readme(path, tools, scratch):
    """Runs the blocks of one README; returns (passed, failures, skipped)."""
    name = os.path.relpath(path, ROOT)
    work = tempfile.mkdtemp(prefix="readme-", dir=scratch)
    passed, failures, skipped, typed = 0, [], 0, []
    for number, (line, info, text) in enumerate(blocks(path), 1):
        language = info[0] if info else ""
        where = f"{name}:{line}"
        target = next((word[5:] for word in info if word.startswith("file=")), None)
        if target:
            with open(os.path.join(work, target), "w", encoding="utf-8") as out:
                out.write(text)
            continue
        if "fragment" in info or language not in ("c", "python", "csharp", "sh") or (
                language == "sh" and "setup" not in info):
            skipped += 1
            continue
        base = os.path.join(work, f"example{number}")
        if language == "sh":
            error = run(["bash", "-e", "-c", text], work, what=where + " (setup)")
        elif language == "c":
            with open(base + ".c", "w", encoding="utf-8") as out:
                out.write(text)
            error = (run(tools.c_command(base + ".c", base), work, what=where + " (cc)")
                     or run([base], work, what=where))
        elif language == "python":
            module = base + ".py"
            with open(module, "w", encoding="utf-8") as out:
                out.write(text)
            typed.append(module)
            error = run([tools.python, module], work, tools.python_env(), where)
        else:
            env, folder = tools.dotnet()
            with open(base + ".cs", "w", encoding="utf-8") as out:
                out.write(text)
            config = os.path.join(work, "app.runtimeconfig.json")
            if not os.path.exists(config):
                config = env["APMNET_DOTNET_CONFIG"]
            exe = os.path.join(folder, f"{os.path.basename(work)}-example{number}.exe")
            error = (run(["mcs", "-nologo", "-r:System.dll", "-r:System.Core.dll",
                          "-r:" + os.path.join(folder, "Apmnet.dll"), "-out:" + exe, base + ".cs"],
                         work, env, where + " (mcs)")
                     or run([env["APMNET_DOTNET"], "exec", "--runtimeconfig", config, exe], work, env, where))
        passed += report(f"{where} ({language})", error, failures)
    if typed and tools.has_mypy():
        error = run([tools.python, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull]
                    + typed, work, tools.python_env(), f"{name} (mypy --strict)")
        passed += report(f"{name}: mypy --strict on its {len(typed)} Python examples", error, failures)
    return passed, failures, skipped


def report(what, error, failures):
    """Prints the outcome of one check (keeping a failure in ``failures``); 1 if it passed."""
    if error:
        failures.append(error)
        print(f"not ok {what}\n  " + error.replace("\n", "\n  ").rstrip(), flush=True)
        return 0
    print(f"ok {what}", flush=True)
    return 1


def main(arguments):
    readmes = [os.path.abspath(p) for p in arguments] or (
        [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "bindings", "*", "README.md"))))
    total_passed, total_failed, total_skipped = 0, 0, 0
    with tempfile.TemporaryDirectory(prefix="apmnet-readme-") as scratch:
        tools = Toolchains(scratch)
        for path in readmes:
            passed, failures, skipped = run_readme(path, tools, scratch)
            total_passed += passed
            total_failed += len(failures)
            total_skipped += skipped
    print(f"readme: {total_passed} passed, {total_failed} failed, {total_skipped} skipped")
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
