"""The invented subjects of `samples/grounded-answers` (read by tools/make_grounded_answers.py).

Each domain has the forms its subjects take (`{N}` is an invented name word), the pronoun later sentences use, and
its facts. A fact is one string, `kind | statement | question / question / ... | value`: `{S}` is the subject at the
start of a sentence, `{s}` inside one, `{V}` the card's value. The value is `person`, `place`, `colour`, `colours`,
`material`, `year[:from-to]`, `num:from-to` or choices separated by `;`; for a yes-no fact it is the statement that
says no. Nothing here is about the documents or topics of bench/rag_eval.
"""

DOMAINS = {
    "company": (
        ("{N} Ceramics", "{N} Textiles", "{N} Glassworks", "{N} Ropeworks", "{N} Paperworks"),
        "it",
        (
            "who | {S} was founded by {V} | Who founded {s}? / Who was the founder of {s}? / "
            "Which person started {s}? | person",
            "when | {S} opened its first workshop in {V} | When did {s} open its first workshop? / "
            "In what year did {s} open its first workshop? | year",
            "how many | {S} employs {V} people | How many people does {s} employ? / "
            "How many employees does {s} have? / How many people work for {s}? | num:35-900",
            "why | {S} moved to a new site because {V} | Why did {s} move to a new site? / "
            "What made {s} move to a new site? | the old workshop flooded every spring; the rent in the city "
            "centre doubled; it needed more room for its machines; a fire destroyed the first building",
            "yes-no | {S} still sells its goods by post | Does {s} still sell its goods by post? / "
            "Can you still buy from {s} by post? | {S} stopped selling its goods by post long ago",
            "what | {S} is based in {V} | Where is {s} based? / In which town is {s} based? | place",
            "what | The logo of {s} shows {V} | What does the logo of {s} show? / What is on the logo of {s}? | "
            "a blue anchor; a green oak leaf; a red fox; a yellow star; a black key; an orange sun",
        ),
    ),
    "ship": (
        ("the {N}", "the schooner {N}", "the cutter {N}"),
        "it",
        (
            "who | {S} was designed by the naval architect {V} | Who designed {s}? / "
            "Which naval architect designed {s}? / Who was the designer of {s}? | person",
            "when | {S} was launched in {V} | When was {s} launched? / In which year was {s} launched? / "
            "What year was {s} launched? | year",
            "how many | {S} carries a crew of {V} | How many crew does {s} carry? / "
            "How large is the crew of {s}? / How many sailors make up the crew of {s}? | num:4-60",
            "why | {S} was renamed because {V} | Why was {s} renamed? / What was the reason {s} was renamed? | "
            "its first owner sold it to a rival company; a storm destroyed its old name board; another vessel "
            "already had the old name; the crew thought the old name brought bad luck",
            "yes-no | {S} still sails every summer | Does {s} still sail every summer? / "
            "Is {s} still sailing each summer? | {S} has not sailed since it was laid up",
            "what | The hull of {s} is painted {V} | What colour is the hull of {s}? / "
            "What colour is {s} painted? | colour",
            "what | {S} has its home port at {V} | Where is the home port of {s}? / "
            "Which town is the home port of {s}? | place",
        ),
    ),
    "festival": (
        ("the {N} Kite Festival", "the {N} Poetry Festival", "the {N} Puppet Fair", "the {N} Film Week"),
        "it",
        (
            "who | {S} was started by {V} | Who started {s}? / Who founded {s}? / Who began {s}? | person",
            "when | {S} was first held in {V} | When was {s} first held? / In what year was {s} first held? / "
            "When did {s} begin? | year:1880-2010",
            "how many | {S} lasts {V} days | How many days does {s} last? / How long does {s} last, in days? | "
            "num:2-12",
            "why | {S} moved to the autumn because {V} | Why did {s} move to the autumn? / "
            "Why is {s} now held in the autumn? | summer storms ruined it twice; the school hall was needed in "
            "June; the visitors asked for cooler weather; the main square was being rebuilt every summer",
            "yes-no | {S} is free to attend | Is {s} free to attend? / Can you attend {s} for free? | "
            "{S} is not free to attend",
            "what | {S} takes place in {V} | Where does {s} take place? / In which town is {s} held? | place",
            "what | The emblem of {s} is {V} | What is the emblem of {s}? / What is the symbol of {s}? | "
            "a paper swallow; a golden crown; a red mask; a blue wave; a white owl; a black cat",
        ),
    ),
    "dish": (
        ("{N} stew", "{N} broth", "{N} flatbread", "{N} pickle", "{N} bean pot", "{N} fish pie"),
        "it",
        (
            "who | {S} was first cooked by {V} | Who first cooked {s}? / Who created {s}? / "
            "Who invented {s}? | person",
            "when | The recipe for {s} was first written down in {V} | "
            "When was the recipe for {s} first written down? / "
            "In what year was the recipe for {s} first written down? | year",
            "how many | One batch of {s} serves {V} people | How many people does one batch of {s} serve? / "
            "One batch of {s} feeds how many people? | num:4-20",
            "why | {S} is eaten cold in summer because {V} | Why is {s} eaten cold in summer? / "
            "Why do people eat {s} cold in summer? | its flavour grows stronger overnight; cooks did not want "
            "to light the stove in the heat; it was carried out to the fields for lunch; the sour taste is more "
            "refreshing when cold",
            "yes-no | {S} contains meat | Does {s} contain meat? / Is there meat in {s}? | {S} contains no meat",
            "what | The main spice in {s} is {V} | What is the main spice in {s}? / "
            "Which spice is used most in {s}? | cumin; sumac; fennel seed; black pepper; smoked paprika; "
            "star anise; coriander seed; mustard seed",
            "what | {S} comes from the town of {V} | Where does {s} come from? / "
            "Which town does {s} come from? | place",
        ),
    ),
    "machine": (
        ("the {N} loom", "the {N} printing press", "the {N} sawmill", "the {N} calculating machine"),
        "it",
        (
            "who | {S} was built by the engineer {V} | Who built {s}? / Which engineer built {s}? / "
            "Who was the builder of {s}? | person",
            "when | {S} was first used in {V} | When was {s} first used? / "
            "In what year was {s} first put to use? | year",
            "how many | {S} needs {V} operators | How many operators does {s} need? / "
            "How many people are needed to run {s}? | num:2-14",
            "why | {S} was moved to a new hall because {V} | Why was {s} moved to a new hall? / "
            "What was the reason for moving {s} to a new hall? | its old floor began to crack; the noise "
            "disturbed the neighbours; the owners wanted it closer to the canal; the old hall was too cold in "
            "winter",
            "yes-no | {S} is still in working order | Is {s} still in working order? / Does {s} still work? | "
            "{S} is no longer in working order",
            "what | The frame of {s} is made of {V} | What is the frame of {s} made of? / "
            "What material is the frame of {s}? | material",
            "what | {S} stands in {V} | Where does {s} stand? / In which town can {s} be seen? | place",
        ),
    ),
    "club": (
        ("{N} Chess Club", "{N} Fencing Club", "{N} Hockey Club", "{N} Curling Club", "{N} Archery Club"),
        "it",
        (
            "who | The first captain of {s} was {V} | Who was the first captain of {s}? / "
            "Who captained {s} first? | person",
            "when | {S} was founded in {V} | When was {s} founded? / In what year was {s} founded? / "
            "When was {s} set up? | year:1850-2005",
            "how many | {S} has {V} members | How many members does {s} have? / "
            "How big is the membership of {s}? | num:18-640",
            "why | {S} changed its colours because {V} | Why did {s} change its colours? / "
            "What made {s} change its colours? | its old shirts looked too much like a rival's; a new sponsor "
            "asked for it; the old dye faded in the sun; the members voted for a fresh start",
            "yes-no | {S} accepts junior members | Does {s} accept junior members? / Can children join {s}? | "
            "{S} does not accept junior members",
            "what | The colours of {s} are {V} | What are the colours of {s}? / Which colours does {s} wear? | "
            "colours",
            "what | {S} meets in {V} | Where does {s} meet? / In which town does {s} meet? | place",
        ),
    ),
    "species": (
        ("the {N} moth", "the {N} beetle", "the {N} finch", "the {N} dragonfly", "the {N} snail"),
        "it",
        (
            "who | {S} was first recorded by {V} | Who first recorded {s}? / Who was the first to record {s}? | "
            "person",
            "when | {S} was given its scientific name in {V} | When was {s} given its scientific name? / "
            "In what year did {s} get its scientific name? | year:1760-1990",
            "how many | {S} is found in {V} valleys | How many valleys is {s} found in? / "
            "In how many valleys does {s} live? | num:2-40",
            "why | {S} is active at night because {V} | Why is {s} active at night? / "
            "Why does {s} come out at night? | its main enemy hunts by day; the flowers it feeds on open after "
            "dark; it dries out quickly in the sun; the air is calmer after sunset",
            "yes-no | {S} is protected by law | Is {s} protected by law? / Does the law protect {s}? | "
            "{S} is not protected by law",
            "what | {S} has {V} markings | What colour are the markings of {s}? / "
            "What colour markings does {s} have? | colour",
            "what | {S} feeds mainly on {V} | What does {s} feed on? / What is the main food of {s}? | "
            "thistle seeds; pine sap; clover nectar; fallen fruit; small spiders; rotting wood",
        ),
    ),
    "building": (
        ("the {N} Library", "the {N} Theatre", "the {N} Bridge", "the {N} Town Hall", "the {N} Bathhouse"),
        "it",
        (
            "who | {S} was designed by the architect {V} | Who designed {s}? / Which architect designed {s}? / "
            "Who was the architect of {s}? | person",
            "when | {S} was completed in {V} | When was {s} completed? / In what year was {s} finished? / "
            "When was {s} finished? | year",
            "how many | {S} took {V} years to build | How many years did {s} take to build? / "
            "How long did it take to build {s}, in years? | num:2-14",
            "why | {S} was closed for a year because {V} | Why was {s} closed for a year? / "
            "What was the reason {s} closed for a year? | its roof needed new timbers; a fire damaged the "
            "east wing; the foundations were sinking; the town could not pay for its heating",
            "yes-no | {S} is open to visitors | Is {s} open to visitors? / Can visitors go inside {s}? | "
            "{S} is not open to visitors",
            "what | {S} is built of {V} | What is {s} built of? / What material was used to build {s}? | "
            "yellow brick; red brick; white marble; dressed flint; concrete; timber and glass",
            "what | {S} stands in {V} | In which town does {s} stand? / Where is {s}? | place",
        ),
    ),
    "person": (
        ("{P}",),
        "",
        (
            "who | {S} was taught by {V} | Who taught {s}? / Who was the teacher of {s}? / Who trained {s}? | person",
            "when | {S} was born in {V} | When was {s} born? / In what year was {s} born? / "
            "What year was {s} born in? | year:1790-1970",
            "how many | {S} wrote {V} books | How many books did {s} write? / "
            "How many books were written by {s}? | num:2-40",
            "why | {S} gave up teaching because {V} | Why did {s} give up teaching? / "
            "What made {s} stop teaching? | the school closed; a long journey abroad took all the time there "
            "was; writing paid better; failing eyesight made the lessons hard",
            "yes-no | {S} travelled abroad | Did {s} ever travel abroad? / Did {s} travel abroad? | "
            "{S} never travelled abroad",
            "what | {S} worked as a {V} | What did {s} work as? / What was the job of {s}? / "
            "What was the profession of {s}? | mapmaker; bookbinder; glassblower; surveyor; chemist; botanist; "
            "printer; stonemason",
            "what | {S} lived in {V} | Where did {s} live? / In which town did {s} live? | place",
        ),
    ),
    "river": (
        ("the River {N}",),
        "it",
        (
            "who | The source of {s} was first mapped by {V} | Who first mapped the source of {s}? / "
            "Who was the first to map the source of {s}? | person",
            "when | The first bridge over {s} was built in {V} | When was the first bridge over {s} built? / "
            "In what year was the first bridge over {s} built? | year:1300-1900",
            "how many | {S} is {V} kilometres long | How long is {s}? / How many kilometres long is {s}? | num:12-480",
            "why | {S} floods each spring because {V} | Why does {s} flood each spring? / "
            "What causes {s} to flood each spring? | snow melts quickly in the hills above it; its channel "
            "narrows near the mouth; the forests along its banks were cut down; heavy rain falls on its upper "
            "valley",
            "yes-no | {S} can be crossed on foot in summer | Can {s} be crossed on foot in summer? / "
            "Is it possible to walk across {s} in summer? | {S} cannot be crossed on foot, even in summer",
            "what | {S} flows into the sea at {V} | Where does {s} flow into the sea? / "
            "At which town does {s} reach the sea? | place",
            "what | The water of {s} is {V} | What colour is the water of {s}? / "
            "What does the water of {s} look like? | brown with peat; clear green; milky white; dark amber",
        ),
    ),
    "software": (
        ("{N} {R}",),
        "it",
        (
            "who | The development of {s} was led by {V} | Who led the development of {s}? / "
            "Who was in charge of developing {s}? | person",
            "when | {S} was released in {V} | When was {s} released? / In what year was {s} released? / "
            "What year did {s} come out? | year:1994-2023",
            "how many | {S} supports {V} languages | How many languages does {s} support? / "
            "In how many languages can {s} be used? | num:3-60",
            "why | {S} dropped its old file format because {V} | Why did {s} drop its old file format? / "
            "What was the reason {s} dropped its old file format? | the format could not store large images; "
            "few users still opened old files; it was slow to load over a network; a new standard replaced it",
            "yes-no | {S} runs on phones | Does {s} run on phones? / Can {s} be used on a phone? | "
            "{S} does not run on phones",
            "what | {S} is written in {V} | Which programming language is {s} written in? / "
            "What language is {s} written in? | Rust; Go; C; Python; Java; Haskell; Lua; OCaml",
            "what | The mascot of {s} is {V} | What is the mascot of {s}? / Which animal is the mascot of {s}? | "
            "a grey otter; a small owl; a green lizard; a red panda; a sleepy badger; a blue whale",
        ),
    ),
    "garden": (
        ("the {N} Gardens", "the {N} Arboretum", "the {N} Rose Garden", "the {N} Physic Garden"),
        "it",
        (
            "who | {S} was laid out by the gardener {V} | Who laid out {s}? / Which gardener laid out {s}? / "
            "Who planned {s}? | person",
            "when | {S} opened to the public in {V} | When did {s} open to the public? / "
            "In what year did {s} open to the public? | year:1760-2000",
            "how many | {S} holds {V} kinds of tree | How many kinds of tree does {s} hold? / "
            "How many tree species grow in {s}? | num:20-900",
            "why | The pond in {s} was filled in because {V} | Why was the pond in {s} filled in? / "
            "What was the reason the pond in {s} was filled in? | it kept leaking into the cellars nearby; the "
            "water turned green every summer; children kept falling into it; the space was needed for a new path",
            "yes-no | {S} allows dogs | Are dogs allowed in {s}? / Does {s} allow dogs? / "
            "Can you bring a dog to {s}? | {S} does not allow dogs",
            "what | The main gate of {s} is made of {V} | What is the main gate of {s} made of? / "
            "What material is the main gate of {s}? | material",
            "what | {S} lies on the edge of {V} | Where does {s} lie? / On the edge of which town does {s} lie? | "
            "place",
        ),
    ),
    # held out: only the test split has these two domains
    "radio": (
        ("Radio {N}",),
        "it",
        (
            "who | {S} was set up by {V} | Who set up {s}? / Who started {s}? / Who founded {s}? | person",
            "when | {S} first went on air in {V} | When did {s} first go on air? / "
            "In what year did {s} start broadcasting? | year:1920-2015",
            "how many | {S} broadcasts for {V} hours a day | How many hours a day does {s} broadcast? / "
            "For how many hours a day is {s} on air? | num:4-20",
            "why | {S} changed its frequency because {V} | Why did {s} change its frequency? / "
            "What made {s} change its frequency? | a stronger station drowned out its signal; the hills blocked "
            "the old signal; the government reassigned the old band; listeners in the valley could not hear it",
            "yes-no | {S} plays adverts | Does {s} play adverts? / Are there adverts on {s}? | {S} plays no adverts",
            "what | {S} broadcasts from {V} | Where does {s} broadcast from? / "
            "From which town does {s} broadcast? | place",
            "what | The studio of {s} is painted {V} | What colour is the studio of {s}? / "
            "What colour is the studio of {s} painted? | colour",
        ),
    ),
    "tram": (
        ("the {N} tram line",),
        "it",
        (
            "who | {S} was planned by the engineer {V} | Who planned {s}? / Which engineer planned {s}? | person",
            "when | {S} opened in {V} | When did {s} open? / In what year did {s} open? | year:1870-2010",
            "how many | {S} has {V} stops | How many stops does {s} have? / "
            "How many stops are there on {s}? | num:5-40",
            "why | {S} was shortened because {V} | Why was {s} shortened? / "
            "What was the reason {s} was shortened? | the old depot was sold; a new road cut across the tracks; "
            "too few people rode to the last stop; the bridge at the end became unsafe",
            "yes-no | {S} runs at night | Does {s} run at night? / Can you ride {s} at night? | "
            "{S} does not run at night",
            "what | The trams on {s} are painted {V} | What colour are the trams on {s}? / "
            "What colour are the trams of {s} painted? | colour",
            "what | {S} ends at {V} | Where does {s} end? / At which town does {s} end? | place",
        ),
    ),
}
TEST_DOMAINS = ("radio", "tram")
VALUES = {
    "colour": "dark blue; bright red; pale green; orange; black; white; mustard yellow; rust red; navy blue; "
    "sky blue; lime green; charcoal grey",
    "material": "oak; beech; cast bronze; riveted steel; wrought iron; copper; pine; ash wood",
}
# first names (female, male); the test split's are its own
FIRST_NAMES = {
    "train": (
        "Marit Inez Bodil Fenna Noor Greta Lucia Tova Agnes Delphine Kaja Mirela Solveig Beatrix Romy Liesel",
        "Tomas Kasimir Jarek Anselm Bruno Caspar Emil Florin Goran Henrik Lorcan Matthias Nils Oskar Piet Aurel",
    ),
    "test": ("Yelena Zofia Halina Ulla Wanda Clothilde", "Dmitri Ivo Rafael Teodor Vaclav Yannick"),
}
# invented name words are a start and an end (checked against bench/rag_eval by tests/unit/test_grounded_sample.py)
STARTS = (  # split on spaces
    "Bal Cor Dun Fel Gar Hel Jor Kel Lan Mor Nel Orv Pel Quar Rav Sel Tam Ulv Ver Wyn Yor Zan Bram Cal Drum Esk "
    "Frel Glim Hask Ilm Jast Kor Lud Mav Nor Osk Pram Rusk Stav Tesk Varn Wex Yst Zor"
)
ENDS = "ada ebek idor ith ova ric isk atin evar owen izel ander ino arth umbe esta imont olva erin usk"
PLACE_ENDS = ("ford", "ton", "stead", "by", "ham", "dale")
