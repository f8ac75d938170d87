"""Execute one notebook with nbclient (run by Debian's /usr/bin/python3; see scripts/notebooks.mjs).

usage: execute-notebook.py NOTEBOOK OUT TIMEOUT [TAG]

Writes the executed notebook to OUT, also when a cell fails (outputs up to the failing cell), and exits 1
naming the cell and what it printed to stderr: tslab reports a failing cell as an error reply whose message
is empty and prints the real error (compile errors, exceptions) on the cell's stderr.

With TAG, only the code cells tagged TAG run, in one fresh kernel, in order (each must import what it uses);
every other cell keeps its committed outputs; execution counts become those of a full run.
"""
import os
import sys
import time
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

path, out, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
tag = sys.argv[4] if len(sys.argv) > 4 else None
whole = nbformat.read(path, as_version=4)
if tag is None:
    nb = whole
else:
    # the tagged code cells as a notebook of their own (the same cell objects: their outputs land in `whole`)
    nb = nbformat.v4.new_notebook(metadata=whole.metadata)
    nb.cells = [c for c in whole.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]
    if not nb.cells:
        print(f"no code cell of {path} is tagged {tag}", file=sys.stderr)
        sys.exit(1)
client = NotebookClient(nb, kernel_name="tslab", timeout=timeout, resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
started = time.time()
code_cells = sum(1 for c in nb.cells if c.cell_type == "code")


def executed(cell, cell_index, execute_reply):
    done = sum(1 for c in nb.cells[: cell_index + 1] if c.cell_type == "code")
    first = cell.source.splitlines()[0][:60] if cell.source else ""
    print(f"  cell {done}/{code_cells} done at {time.time() - started:.0f} s: {first}", flush=True)


client.on_cell_executed = executed
status = 0
try:
    client.execute()
except CellExecutionError as e:
    status = 1
    failed = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("execution_count") is None), None)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        stderr = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr")
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors or (stderr and "Error" in stderr):
            first = cell.source.splitlines()[0] if cell.source else ""
            print(f"cell {i} ({first} ...) failed:\n{stderr}" + "".join(f"{o.get('ename')}: {o.get('evalue')}\n" for o in errors), file=sys.stderr)
    print(str(e).strip().splitlines()[-1] if str(e).strip() else "a cell failed", file=sys.stderr)
if tag is not None:
    # the counts a full run gives (cells inserted since the last full run shift the later ones)
    for i, cell in enumerate(c for c in whole.cells if c.cell_type == "code"):
        if cell.get("execution_count") is not None:
            cell.execution_count = i + 1
# execution timestamps would make every rerun a diff of the committed notebooks
for cell in whole.cells:
    cell.metadata.pop("execution", None)
nbformat.write(whole, out)
sys.exit(status)
