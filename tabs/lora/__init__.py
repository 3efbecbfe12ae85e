"""The LoRA tab: parameter-efficient fine-tuning of chat models with trl + peft, shown step by step (data and its
loss mask, the adapter's size and cost, live training, base vs adapter, merge, share). `build(manager)` makes it."""

from tabs.lora.tab import LoraTab, build

__all__ = ["LoraTab", "build"]
