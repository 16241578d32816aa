#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Turn the README's C snippets into one program, as a reader would paste them.

    readme_snippets.py README.md > readme.c

Every ```c block of the README, in order: its #include lines go to the top,
everything else into main(), one block after the other. The only things added
are what the README says are the reader's own: do_exclusive_work(),
do_leader_work() and apply_change(), and the ensemble's addresses, which come from argv[1] in
place of the README's example hosts. install-smoke.sh builds the result with
-Wall -Wextra -Werror against the staged install and runs it.
"""
import re
import sys

EXAMPLE_HOSTS = '"10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181"'

READERS_OWN = """
/* The reader's own functions, as the README's snippets assume them. */
static void do_exclusive_work(int64_t token) {
  printf("exclusive work, fencing token %lld\\n", (long long)token);
}

static void do_leader_work(zkr_election_t *e, int64_t epoch) {
  printf("leading, epoch %lld, still leader: %d\\n", (long long)epoch,
         zkr_election_is_leader(e));
}

static void apply_change(zkr_journal_t *j, const zkr_journal_event_t *ev, void *arg) {
  (void)j, (void)arg;
  printf("%s %lld: %.*s\\n", zkr_journal_event_name(ev->type), (long long)ev->seq,
         ev->len > 0 ? ev->len : 0, ev->data ? ev->data : "");
}
"""


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    blocks = re.findall(r"^```c\n(.*?)^```$", text, flags=re.S | re.M)
    if not blocks:
        sys.exit("readme_snippets: no C snippet in " + sys.argv[1])
    includes, body = [], []
    for i, b in enumerate(blocks, 1):
        body.append(f"  /* ---- README snippet {i} ---- */")
        for line in b.splitlines():
            if line.startswith("#include"):
                if line not in includes:
                    includes.append(line)
            else:
                body.append(("  " + line) if line else "")
    src = "\n".join(body)
    if EXAMPLE_HOSTS not in src:
        sys.exit("readme_snippets: the README's example hosts are gone; update this test")
    src = src.replace(EXAMPLE_HOSTS, "argv[1]")
    print("/* Generated from the README by tests/readme_snippets.py: do not edit. */")
    print("\n".join(includes))
    print(READERS_OWN)
    print("int main(int argc, char **argv) {")
    print("  if (argc != 2)")
    print("    return 64;")
    print(src)
    print("  return 0;")
    print("}")


if __name__ == "__main__":
    main()
