"""`ovseg bag`: rosbag2 (MCAP or sqlite3) in, the same bag with the node's outputs added out.

- `types`: message definitions for the writer (distro typestore + this package's messages)
- `source`: opening an input bag, its connections and raw messages (truncated MCAP included)
- `sink`: the output bag: `OUTPUT.partial/`, MCAP + zstd chunks, renamed when complete; resume
- `process`: the frame loop over one bag, through the node's own frame path pieces
- `fleet`: many bags: `--shard`, and Ray actors (`--ray`)
- `cli`: the `ovseg bag` sub-command
"""


class BagError(Exception):
    """A problem with an input or output bag, told in one line (the CLI prints it)."""
