"""Inside a model tab: anatomy, one forward pass step by step (attention, kinds of heads, layer updates, logit lens)
and "Build your own" (`tab.py`, with `build_panel`, the HTML of `render` and the pictures of `heatmaps`)."""
