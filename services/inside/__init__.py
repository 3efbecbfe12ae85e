"""Inside a model: what a model is made of and what happens in it, for students.

- `anatomy.inspect_model`: every module with its parameter count, the share per kind of layer, the config's
  fields explained in plain words, and the memory its weights need in fp32 / bf16 / int8 / 4-bit.
- `forward.forward_views`: one forward pass on a text, shown step by step (attention per layer and head, what kind
  of head each one is, how much each layer changes the hidden states, and the logit lens).
- `build`: a model of your own from a changed config: its size estimated without allocating it, then created
  with random weights as ``trained:<name>``, with a Fine-tune config to train it from scratch.
- `snippets`: the short transformers code behind each view ("Copy as code").

The models come from the app's shared cache (`services.models.loading`); torch and transformers are imported
inside functions so importing this package stays fast.
"""
