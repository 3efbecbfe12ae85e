"""The "Run on" block the Fine-tune and LoRA tabs share: this machine (a child process, as before) or Hugging Face
Jobs, with the hardware (its price per hour, from the Jobs API), the number of nodes, a time limit and the repo the
result is pushed to. A run on Jobs is followed like a local training (services.training.remote_jobs)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from services.training import jobs as training_jobs
from services.training import remote_jobs
from tabs.session import friendly

LOCAL, REMOTE = "This machine", "Hugging Face Jobs"


@dataclass
class RunOn:
    where: gr.Radio
    flavor: gr.Dropdown
    nodes: gr.Slider
    timeout: gr.Textbox
    push_to: gr.Textbox
    command: gr.Markdown

    @property
    def inputs(self) -> list:
        return [self.where, self.flavor, self.nodes, self.timeout, self.push_to]


def build(prefix: str) -> RunOn:
    where = gr.Radio([LOCAL, REMOTE], value=LOCAL, label="Run on", elem_id=f"{prefix}-run-on",
                     info="Hugging Face Jobs: the GPU you pick, one machine or several, billed to your account; "
                          "the result is pushed to your Hub repo")  # fmt: skip
    with gr.Group(visible=False) as box, gr.Row(equal_height=True):
        flavor = gr.Dropdown([], label="Hardware (price per hour)", scale=3, elem_id=f"{prefix}-flavor")
        nodes = gr.Slider(1, remote_jobs.MAX_NODES, value=1, step=1, label="Nodes (machines training together)")
        timeout = gr.Textbox("2h", label="Time limit", max_lines=1, info="30m, 2h, … (at most 24h)")
        push_to = gr.Textbox(label="Push the result to", max_lines=1, placeholder="your-name/model-name",
                             info="Empty: your account / the model's name (private)")  # fmt: skip
    command = gr.Markdown(visible=False, elem_id=f"{prefix}-remote-command")

    @friendly
    def on_where(choice, oauth: gr.OAuthToken | None):
        if choice != REMOTE:
            return {box: gr.update(visible=False), command: gr.update(visible=False)}
        choices = remote_jobs.hardware_choices(oauth.token if oauth else None)
        pick = next((name for _, name in choices if name.startswith("t4") or name.startswith("a10g")), None)
        return {box: gr.update(visible=True), flavor: gr.update(choices=choices, value=pick or choices[0][1]),
                command: gr.update(visible=True)}  # fmt: skip

    where.change(on_where, [where], [box, flavor, command], api_visibility="private")

    def show_command(choice, flavor_, nodes_, timeout_):
        line = training_jobs.preview_command() + f" --on hf-jobs --flavor {flavor_} --nodes {int(nodes_ or 1)}"
        return f"The run: `{line} --timeout {timeout_ or '2h'}`, one job per node." if choice == REMOTE else ""

    gr.on([flavor.change, nodes.change, timeout.change], show_command, [where, flavor, nodes, timeout], command,
          api_visibility="private", show_progress="hidden")  # fmt: skip
    return RunOn(where, flavor, nodes, timeout, push_to, command)


def start(manager, run_on: RunOn, d: dict, owner: str, config, name: str, token: str | None) -> str:
    """Start the training where the form says; returns the app job's id."""
    if d[run_on.where] != REMOTE:
        return training_jobs.start(manager, owner, config, name, token=token)
    if not d[run_on.flavor]:
        raise gr.Error("Pick the hardware the run should use.")
    return remote_jobs.start(manager, owner, config, name, token, d[run_on.flavor], int(d[run_on.nodes] or 1),
                             d[run_on.timeout], push_to=(d[run_on.push_to] or "").strip() or None)  # fmt: skip


def outputs(manager, record, owner: str, token: str | None) -> dict | None:
    """A remote run's outputs when it is done (None for a local job); while it runs, make sure it is followed (an
    app restart left it without a follower)."""
    if record.kind != remote_jobs.KIND:
        return None
    if not record.done:
        remote_jobs.keep_following(manager, record, owner, token)
        return None
    return remote_jobs.outputs(manager, record.id, owner)


def is_training(record) -> bool:
    return record.kind in ("train", remote_jobs.KIND)


def register_api(manager) -> None:
    """/hf_jobs_hardware and /train_on_hf_jobs: the same as the form's "Run on: Hugging Face Jobs"."""
    from services.training.config import TrainConfig
    from tabs.session import owner_of

    @friendly
    def hf_jobs_hardware(request: gr.Request, oauth: gr.OAuthToken | None = None) -> list[dict]:
        """Hugging Face Jobs hardware, cheapest first: [{flavor, label}] (the label has the price per hour). Uses
        your token (sign in, or HF_TOKEN where the app runs on your own machine)."""
        return [{"flavor": name, "label": label}
                for label, name in remote_jobs.hardware_choices(oauth.token if oauth else None)]  # fmt: skip

    @friendly
    def train_on_hf_jobs(config: str, name: str, flavor: str, nodes: int, timeout: str, request: gr.Request,
                         profile: gr.OAuthProfile | None, oauth: gr.OAuthToken | None = None) -> str:  # fmt: skip
        """Start a Fine-tune or LoRA training (its job.yaml as text) on Hugging Face Jobs: `nodes` machines of
        `flavor` for at most `timeout` (30m, 2h, ...). The result goes to push_to_hub.repo_id (default: your
        account / `name`, private) and is listed under its Hub id. Returns the app job id: follow it with /job."""
        owner = owner_of(request, profile)
        parsed = TrainConfig.from_yaml_text(config or "")
        return remote_jobs.start(manager, owner, parsed, name, oauth.token if oauth else None, flavor,
                                 int(nodes or 1), timeout or None)  # fmt: skip

    gr.api(hf_jobs_hardware, api_name="hf_jobs_hardware")
    gr.api(train_on_hf_jobs, api_name="train_on_hf_jobs")
