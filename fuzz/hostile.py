"""Strings a hostile model or command line might carry: paths to follow, code to run,
format strings, shell syntax, odd Unicode. graphtool must treat each as inert text."""
from __future__ import annotations

# A file a test can check was never created (code in a model must never run).
PWNED_MARKER = "/tmp/graphtool-fuzz-pwned"

HOSTILE_STRINGS = (
    "/etc/passwd",
    "../../x",
    "../../../../../../etc/shadow",
    "file:///etc/passwd",
    "/dev/zero",
    "/dev/stdin",
    "/proc/self/mem",
    "~/.ssh/id_rsa",
    "C:\\Windows\\System32\\config\\SAM",
    f"__import__('os').system('touch {PWNED_MARKER}')",
    f"eval(\"open('{PWNED_MARKER}', 'w')\")",
    f"exec('import os; os.mknod(\"{PWNED_MARKER}\")')",
    "lambda: 1/0",
    f"$(touch {PWNED_MARKER})",
    f"`touch {PWNED_MARKER}`",
    f"; touch {PWNED_MARKER}",
    "{0.__class__.__mro__}",
    "%s%s%s%n",
    "{__import__}",
    "${jndi:ldap://x}",
    "\x00hidden",
    "\u202eevil",
    "\ud800",
    "\U0001f600",
    "a" * 10000,
    "",
    " ",
    "\n",
    "x:0",
    "^x",
    "x:99999999999999999999",
)
