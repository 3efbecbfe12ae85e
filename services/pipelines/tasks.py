"""What each task is, for people who have never used transformers: a name, a short explanation, the inputs it
takes, the settings it offers, and an example that runs offline on the packaged models where one can.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TaskSpec:
    id: str  # the transformers 4.x task name
    label: str
    explanation: str
    inputs: tuple[str, ...]  # which inputs it takes: text, context, labels, sentences, languages
    settings: tuple[str, ...] = ()  # which settings the form shows
    example: dict = field(default_factory=dict)  # input values for the "Example" button
    offline_model: str | None = None  # a packaged model that does it with no Hub access


_EIFFEL = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named after the "
    "engineer Gustave Eiffel, whose company designed and built the tower from 1887 to 1889 as the entrance to the "
    "1889 World's Fair. It is 330 metres tall and was the tallest man-made structure in the world until 1930."
)

TASK_SPECS: dict[str, TaskSpec] = {
    spec.id: spec
    for spec in (
        TaskSpec(
            "text-classification",
            "Sentiment / text classification",
            "The model reads the whole text and gives a score to each label it was trained on (for example "
            "POSITIVE and NEGATIVE). The bars show how sure it is. Train your own classifier in the Fine-tune tab.",
            ("text",),
            ("top_k",),
            {"text": "I loved this film: the actors were wonderful and the story kept me guessing."},
            "minilm-sentiment",
        ),
        TaskSpec(
            "token-classification",
            "Named entities (NER)",
            "The model labels words: people (PER), places (LOC), organisations (ORG) and more. Words split into "
            "several tokens are grouped back into whole entities by the aggregation strategy.",
            ("text",),
            ("aggregation_strategy",),
            {"text": "Marie Curie moved from Warsaw to Paris and worked at the University of Paris."},
            "minilm-ner",
        ),
        TaskSpec(
            "question-answering",
            "Question answering",
            "An extractive model finds the span of the context that answers the question; it never invents "
            "words. The answer is highlighted where it was found, with the runners-up below.",
            ("text", "context"),
            ("top_k", "max_answer_len", "handle_impossible_answer"),
            {"text": "How tall is the Eiffel Tower?", "context": _EIFFEL},
        ),
        TaskSpec(
            "summarization",
            "Summarization",
            "The model writes a shorter text that keeps the main points. Sequence-to-sequence models (T5, BART) "
            "were trained for it; chat models (like the packaged SmolLM2) are asked to do it in a prompt.",
            ("text",),
            ("max_new_tokens", "num_beams"),
            {"text": _EIFFEL},
            "smollm2-135m-instruct",
        ),
        TaskSpec(
            "translation",
            "Translation",
            "The model rewrites the text in another language. Translation models (Marian, T5) know fixed language "
            "pairs; chat models are told the languages in a prompt (small ones make mistakes: compare a few!).",
            ("text", "languages"),
            ("max_new_tokens", "num_beams"),
            {"text": "The weather is lovely today, so we are going to the beach.", "src_lang": "en", "tgt_lang": "fr"},
            "smollm2-135m-instruct",
        ),
        TaskSpec(
            "text-generation",
            "Text generation / chat",
            "The model writes one token at a time, each time picking a likely next piece of text. Chat models answer "
            "your message; others continue your text. Colours show how likely each chosen token was; hover a token "
            "to see the alternatives the model considered.",
            ("text",),
            ("max_new_tokens", "temperature", "top_p", "top_k_sampling", "repetition_penalty", "seed"),
            {"text": "Explain in two sentences why the sky is blue."},
            "smollm2-135m-instruct",
        ),
        TaskSpec(
            "zero-shot-classification",
            "Zero-shot classification",
            "Classify text into labels you make up, with no training. NLI models judge 'This text is about X'; "
            "sentence-embedding models (like the packaged MiniLM) pick the label whose meaning is closest.",
            ("text", "labels"),
            ("multi_label",),
            {"text": "The striker scored twice in the last ten minutes.", "labels": "sports, politics, cooking"},
            "all-minilm-l6-v2",
        ),
        TaskSpec(
            "fill-mask",
            "Fill the mask",
            "The model guesses the word hidden behind the mask token ([MASK] or <mask>), the game masked language "
            "models like BERT were trained on.",
            ("text",),
            ("top_k",),
            {"text": "Paris is the [MASK] of France."},
        ),
        TaskSpec(
            "sentence-similarity",
            "Sentence similarity / embeddings",
            "An embedding model turns each sentence into a vector of numbers; sentences with similar meaning get "
            "nearby vectors. The score is the cosine similarity (1 = same meaning, 0 = unrelated).",
            ("text", "sentences"),
            (),
            {
                "text": "A man is playing a guitar.",
                "sentences": "Someone is strumming a guitar.\nA chef is cooking pasta.\nMusic is being played.",
            },
            "all-minilm-l6-v2",
        ),
        TaskSpec(
            "feature-extraction",
            "Feature extraction",
            "The raw output of a model: one vector per token. This is what embeddings and classifiers are built on.",
            ("text",),
            (),
            {"text": "Tokens become vectors."},
            "all-minilm-l6-v2",
        ),
    )
}


def spec(task: str) -> TaskSpec:
    from services.models.catalog import canonical_task

    return TASK_SPECS[canonical_task(task)]
