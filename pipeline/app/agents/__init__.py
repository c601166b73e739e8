"""One module per Faust agent; each shows the whole path of its messages."""
