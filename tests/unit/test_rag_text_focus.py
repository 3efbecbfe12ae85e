"""`services.rag.text.focus_of`: what a question asks about its subject, the subject's names taken out."""

from services.rag.text import focus_of


def test_the_names_after_the_first_word_are_taken_out():
    assert focus_of("What colour is the dial of Tanner's Clock?") == "What colour is the dial of?"
    assert focus_of("In which town did Ottoline Vask open her conservatory?") == (
        "In which town did open her conservatory?"
    )


def test_a_question_without_names_or_with_nothing_else_has_no_focus():
    assert focus_of("how many bells are there?") == ""  # no name: the question is its own focus
    assert focus_of("Who is Ottoline Vask?") == ""  # only question words are left
