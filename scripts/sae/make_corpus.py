#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Builds the synthetic ePRO corpus for the demo serious-adverse-event classifier.

Every text is generated from hand-written phrase lists and templates below; no
real patient data is involved. The output is deterministic for a given seed:

    /usr/bin/python3 scripts/sae/make_corpus.py [--seed 20240521] [--per-class 2000]
        [--out data/sae/corpus.jsonl]

Each line of the output is {"text": str, "label": 0|1, "split": "train"|"val"|"test"}.
label 1 = serious (at least one serious adverse event is reported as present),
label 0 = not serious (only mild symptoms, nothing, or serious symptoms that are
explicitly negated).

The split is a function of the text alone (SHA-256 of the lowercased text), so
exact duplicates can never straddle train and test, and re-running with another
seed keeps each text's split stable.
"""

import argparse
import hashlib
import json
import os
import random
import re

# ---------------------------------------------------------------------------
# Serious findings. Each category has noun phrases (slotted into templates) and
# full first-person clauses (used as they are). Misspellings are deliberate.
# ---------------------------------------------------------------------------
SERIOUS = {
    "breathing": {
        "np": ["severe shortness of breath", "trouble breathing", "difficulty breathing",
               "real bad trouble breathing", "shortness of breath even at rest",
               "so much wheezing I couldnt talk", "breathing problems that wont stop",
               "dificulty breathing", "labored breathing"],
        "cl": ["I can't breathe properly", "cant breath", "cant breathe", "I couldn't catch my breath even sitting still",
               "struggling to breathe", "was gasping for air", "my breathing got really hard and my lips went blue",
               "short of breath at rest and couldnt finish a sentence", "it feels like I'm suffocating",
               "hard to breath even lying down", "used my rescue inhaler 6 times and it didnt help",
               "I cant get enough air in", "breathing is so hard I have to sit up all night",
               "my chest is tight and i cant breathe", "woke up gasping and couldnt breathe",
               "could barely breathe walking to the bathroom", "i was choking for air"],
    },
    "chest": {
        "np": ["crushing chest pain", "chest pain", "chest pian", "pain in my chest spreading to my left arm",
               "pressure in my chest that wont go away", "sharp chest pains", "chest pain and sweating",
               "heavy pressure on my chest", "chest pain going into my jaw"],
        "cl": ["my chest feels like someone is sitting on it", "my heart was racing and my chest hurt bad",
               "chest hurts every time I breathe in", "I had chest pain for about 20 min",
               "got a squeezing pain in the middle of my chest", "chest started hurting and my left arm went numb",
               "my chest has been hurting on and off all day", "felt a tearing pain in my chest",
               "heart pounding at 170 and chest aching"],
    },
    "anaphylaxis": {
        "np": ["throat swelling", "swelling in my throat", "a swollen tongue", "an allergic reaction with hives and wheezing",
               "anaphylaxis", "anaphylactic reaction", "swelling of my lips and tongue", "facial swelling and wheezing"],
        "cl": ["my throat is closing up", "throat felt like it was closing", "my tongue and lips swelled up",
               "my face swelled up and I couldn't swallow", "I had to use my epipen", "had to use the epi pen",
               "lips and eyes puffed up and i was wheezing", "throat got tight and my voice went hoarse right after the dose",
               "my throat swole up", "couldnt swallow my own spit, throat swollen", "my tounge swelled up"],
    },
    "seizure": {
        "np": ["a seizure", "a siezure", "convulsions", "a fit", "seizures", "a grand mal seizure"],
        "cl": ["I had a seizure", "had a siezure last night", "my wife said I was shaking and jerking and not responding",
               "I blacked out and bit my tongue and they said it looked like a seizure",
               "my whole body was jerking and i couldnt stop it", "had 2 seizures today",
               "my son found me convulsing on the floor", "i had a fit at work"],
    },
    "consciousness": {
        "np": ["fainting", "a blackout", "loss of consciousness", "a fainting spell where I hit my head"],
        "cl": ["I passed out", "i fainted", "faintd", "dizzy and faintd", "I blacked out", "lost consciousness",
               "I collapsed in the kitchen", "woke up on the bathroom floor", "passed out for about a minute",
               "i past out at the store", "fainted twice today", "blacked out while driving",
               "my husband couldnt wake me up", "I passed out in the shower and hit my head",
               "went all dizzy and then fainted", "dizzy then passed out"],
    },
    "suicidal": {
        "np": ["thoughts of killing myself", "suicidal thoughts", "thoughts of hurting myself", "thoughts of suicide",
               "urges to end my life"],
        "cl": ["I want to end my life", "I've been thinking about suicide", "i dont want to be alive anymore",
               "I keep thinking about killing myself", "I have thoughts of hurting myself",
               "i made a plan to kill myself", "i feel like everyone would be better off if i was dead",
               "ive been having suicidal thoughts", "i thought about taking all my pills at once"],
    },
    "hospital": {
        "np": ["a trip to the ER", "an ambulance ride to the hospital", "an ER visit", "a hospital admission",
               "an emergency room visit"],
        "cl": ["went to the ER", "ended up in the emergency room", "I was admitted to the hospital",
               "the ambulance took me to the hospital", "spent 2 nights in hospital", "they kept me in the ICU",
               "my daughter called 911", "had to go to the emergency room", "was hospitalized for 3 days",
               "I am writing this from a hospital bed", "got admitted last night", "went to A&E",
               "they admitted me overnight for observation"],
    },
    "bleeding": {
        "np": ["vomiting blood", "coughing up blood", "a nosebleed that wouldnt stop for an hour", "black tarry stools",
               "heavy bleeding that wont stop", "blood in my vomit", "bloody diarrhea with clots",
               "bleeding gums that won't stop"],
        "cl": ["I threw up blood", "I'm bleeding heavily and it won't stop", "my nose bled for over an hour",
               "soaked through a pad every hour", "there was a lot of blood in the toilet",
               "coughed up bright red blood", "my stool is black and tarry", "i cant get the bleeding to stop",
               "puked blood this morning"],
    },
    "stroke": {
        "np": ["face drooping on one side", "slurred speech", "sudden numbness on one side of my body",
               "sudden loss of vision in one eye", "weakness on my right side", "the worst headache of my life"],
        "cl": ["my face is drooping on one side", "I can't move my left arm", "my speech is slurred",
               "couldnt get my words out and my arm went weak", "suddenly lost vision in one eye",
               "the left side of my face went numb and droopy", "I suddenly couldnt feel my right leg",
               "my words came out all jumbled and my hand went numb",
               "got the worst headache of my life out of nowhere"],
    },
    "skin": {
        "np": ["a rash with blisters all over", "skin peeling off in sheets", "a blistering rash and sores in my mouth",
               "a painful peeling rash with fever", "blisters on my skin and eyes", "a rash that is blistering"],
        "cl": ["my skin is blistering and peeling", "the rash turned into blisters and spread everywhere",
               "my skin is coming off in patches", "I have sores in my mouth and my eyes and the rash is blistering",
               "big blisters popped up all over my chest and back", "the rash is peeling and it burns like fire"],
    },
    "other": {
        "np": ["a heart rate over 150 that wont come down", "yellow skin and eyes", "a fever of 104 and a stiff neck",
               "severe confusion", "very dark urine and yellow eyes", "sudden severe swelling in one leg"],
        "cl": ["I was so confused I didnt recognise my husband", "my eyes and skin turned yellow",
               "I had a fever of 104 and a stiff neck", "my heart rate went to 180 and wouldnt come down",
               "i couldn't stop vomiting and couldnt keep water down for 2 days",
               "my leg got hot swollen and painful all of a sudden"],
    },
}

# ---------------------------------------------------------------------------
# Mild findings (not serious on their own).
# ---------------------------------------------------------------------------
MILD = {
    "np": ["a mild headache", "a headache", "a slight headache", "a really bad headache", "tiredness",
           "a bit of nausea", "slight nausea", "a queasy stomach", "a sore arm where I got the shot",
           "injection site soreness", "redness at the injection site", "a small itchy rash on my arm",
           "a mild rash", "trouble sleeping", "dry mouth", "a runny nose", "mild diarrhea", "constipation",
           "muscle aches", "stiff joints", "low appetite", "a metallic taste", "hot flashes",
           "a low grade fever of 99.8", "chills", "itchy skin", "bloating", "heartburn", "a mild cough",
           "a stuffy nose", "a sore throat", "brain fog", "leg cramps", "back pain", "vivid dreams",
           "night sweats", "a bruise at the injection site", "chapped lips", "an upset stomach",
           "a headahce", "nausia", "a tension headache", "some dizziness when I stand up fast",
           "a small nosebleed that stopped after a couple minutes", "a bit of blood when I brushed my teeth",
           "mild swelling at the injection site", "achy legs", "a pounding headache", "an annoying rash",
           "a stomach ache", "gas", "sneezing", "watery eyes", "a mild fever", "fatigue", "heavy eyelids",
           "a dry cough", "tingling in my fingers for a few seconds", "lower back pain", "a sore neck",
           "cramps", "feeling drowsy", "ringing in my ears", "soreness", "nausea", "a headache again"],
    "cl": ["I'm so tired", "slept badly again", "felt a bit off today", "my stomach was a bit upset after breakfast",
           "my arm is sore where they gave me the shot", "had a small headache that went away with tylenol",
           "feeling ok just tired", "couldnt sleep last night", "my mouth is really dry", "I feel kinda nauseous",
           "feel tired all the time", "im exhausted", "a bit dizzy when i got up but it passed", "felt queasy after the pill",
           "the injection spot is red and itchy", "i have a little rash on my wrist", "head hurts a bit",
           "my joints ache in the morning", "i threw up once but felt better after", "been sneezing all day",
           "my legs feel heavy", "had the runs this morning", "i keep waking up at 3am", "im a bit grumpy and irritable",
           "food tastes weird", "my skin is a little itchy", "feeling a bit low today", "i feel anxious before my dose",
           "had a mild fever that went away by lunch", "I get a bit lightheaded if I skip breakfast",
           "my nose is stuffed up", "i feel bloated", "my throat is a little scratchy", "my back is stiff",
           "i have a headache", "feeling tierd", "stomach feels off", "cant sleep", "im a little shakey",
           "my eyes are dry", "i had a nose bleed for like 2 minutes", "my heart felt fluttery for a sec after coffee",
           "had some cramping", "bit of a sore throat", "ive been feeling kind of foggy"],
}

# Neutral "nothing to report" clauses (not serious).
NEUTRAL = ["no side effects today", "feeling fine", "nothing new to report", "all good", "feeling normal",
           "doing well", "no problems", "no new symptoms", "feel great actually", "everything is ok",
           "nothing unusual", "same as yesterday, doing ok", "feeling better than last week",
           "no complaints", "I'm fine", "all normal today", "no issues with the meds so far"]

# Explicit negations of serious findings (not serious when nothing serious is present).
NEGATED = {
    "breathing": ["no shortness of breath", "no trouble breathing", "breathing is fine", "denies shortness of breath",
                  "I can breathe fine", "no wheezing", "not short of breath", "didnt have any breathing problems",
                  "no sob"],
    "chest": ["no chest pain", "denies chest pain", "my chest doesnt hurt", "no chest tightness", "never had chest pain",
              "no pain in my chest"],
    "anaphylaxis": ["no swelling in my throat or lips", "throat isn't swollen", "no tongue swelling", "didnt need my epipen",
                    "no throat swelling", "my lips and throat are fine"],
    "seizure": ["no seizures", "didnt have a seizure", "no shaking or jerking", "no fits"],
    "consciousness": ["didn't faint", "did not pass out", "never lost consciousness", "no fainting",
                      "havent passed out or anything", "didnt black out", "denies syncope", "i didnt faint"],
    "suicidal": ["no thoughts of hurting myself", "not suicidal", "no suicidal thoughts", "denies suicidal ideation",
                 "I have no thoughts of harming myself"],
    "hospital": ["didn't need to go to the ER", "I did not go to the hospital", "no ER visit",
                 "didnt have to go to the emergency room", "no hospital visits"],
    "bleeding": ["no bleeding", "no blood in my stool", "no blood when I cough", "didnt vomit any blood"],
    "stroke": ["my speech is normal", "no numbness or weakness", "no face drooping", "vision is fine"],
    "skin": ["no blisters", "the rash isnt blistering", "no peeling skin", "no sores in my mouth"],
}

# Not-serious clauses that mention serious words without reporting a serious event.
HARD_NEGATIVE = [
    "was scared it was a heart attack but it was just heartburn",
    "thought I might faint but I sat down and was fine",
    "my doctor said to go to the ER if I get chest pain, so far nothing like that",
    "had my routine bloodwork at the hospital lab",
    "my mom was in the hospital last year but I'm doing ok",
    "the nurse asked about seizures and I said no",
    "the leaflet mentions throat swelling but I haven't had that",
    "worried about the blood clot warning but my legs feel normal",
    "I watched a show about strokes and got nervous but I feel fine",
    "follow up appointment at the hospital is next week",
    "my friend fainted after her shot but I didn't",
    "I was afraid I couldn't breathe but it was just my stuffy nose",
    "checked my blood pressure and it was normal",
    "had a bit of chest soreness from coughing, doc said it's the muscle",
    "asked the pharmacist about the suicide warning on the label, I'm feeling ok mentally",
    "called the nurse line just to ask a question about my dose",
    "i drove past the emergency room on the way to work lol",
    "my breathing test at the clinic came back normal",
]

# Things people add after a serious event (serious context; mention actions).
SERIOUS_FOLLOWUP = ["my husband called 911", "called my doctor right away", "the paramedics came",
                    "they gave me oxygen", "they did a CT scan", "they gave me steroids and an IV",
                    "they said it was a reaction to the new medication", "still feel scared", "I'm still shaking",
                    "they told me to stop the study drug", "my wife drove me to urgent care",
                    "nurse told me to come in right away"]

# Shared framing for both classes, so none of it leaks the label.
OPENERS = ["Day {d} after dose {n}.", "Took my {mg}mg this morning.", "Week {w} update:", "Update:",
           "Entry for {date}:", "Hi,", "Hello doctor,", "{date}", "ok so", "Quick note -", "Dose {n} done.",
           "This is my day {d} diary.", "Been on the new med for {d} days.", "After my injection on {weekday},",
           "Not sure if this is related but", "So", "Hi team.", "Diary {date}.", "Re: side effects -",
           "Took {mg} mg at {clock}.", "After the second shot", "started the {mg}mg dose {weekday}."]
CLOSERS = ["Will keep logging.", "pls advise", "not sure if this is related to the new med",
           "Thanks.", "lol", "Let me know if I should do anything.", "Will update tomorrow.", "thx",
           "Is this normal?", "Should I keep taking it?", "I'll mention it at my next visit.",
           "Taking my next dose tonight.", "Just letting you know.", "Otherwise ok.", ":(", "ugh",
           "Please call me.", "Wanted to report it.", "idk", "Anyone else get this?",
           "My BP was {bp} this morning.", "Temp {temp}."]
TIMES = ["since yesterday", "at 3am", "on {date}", "this morning", "last night", "since {weekday}",
         "{d} days after my second dose", "after taking {mg}mg", "about an hour after the injection",
         "for the past week", "around {clock}", "today", "yesterday afternoon", "right after my dose",
         "{h} hours after the shot", "earlier tonight", "over the weekend", "twice this week"]

NP_TEMPLATES = ["I have {np}", "I had {np}", "having {np}", "woke up with {np}", "{np}", "{np} {time}",
                "got {np} {time}", "I've had {np} {time}", "I'm having {np}", "experiencing {np}",
                "had {np} {time}", "been dealing with {np}", "I noticed {np}", "{np} started {time}",
                "still have {np}", "i get {np}", "Having {np} again"]

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "mon", "thurs"]


def fill(rng, text):
    """Replaces {d},{n},{mg},... placeholders with random values."""
    def date():
        fmt = rng.randrange(4)
        m, day = rng.randint(1, 12), rng.randint(1, 28)
        if fmt == 0:
            return f"{m}/{day}"
        if fmt == 1:
            return f"2024-{m:02d}-{day:02d}"
        if fmt == 2:
            return f"{day}.{m}."
        return f"{['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][m - 1]} {day}"

    def clock():
        h = rng.randint(1, 12)
        return rng.choice([f"{h}pm", f"{h}am", f"{h}:{rng.choice(['00', '15', '30', '45'])}", f"{h} pm", f"{h:02d}:{rng.randint(0, 59):02d}"])

    values = {
        "d": lambda: str(rng.randint(1, 30)), "n": lambda: str(rng.randint(1, 4)),
        "mg": lambda: rng.choice(["5", "10", "20", "25", "40", "50", "100", "150", "200", "500", "2.5", "0.5"]),
        "w": lambda: str(rng.randint(1, 12)), "date": date, "clock": clock,
        "weekday": lambda: rng.choice(WEEKDAYS), "h": lambda: str(rng.randint(1, 12)),
        "bp": lambda: f"{rng.randint(105, 145)}/{rng.randint(65, 92)}",
        "temp": lambda: rng.choice(["98.6", "99.1", "37.2", "36.8", "99.5", "37.0"]),
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)](), text)


def phrase_from(rng, np_list, cl_list):
    """One clause: a slotted noun phrase or a ready-made clause."""
    if rng.random() < 0.45:
        t = rng.choice(NP_TEMPLATES)
        return t.replace("{np}", rng.choice(np_list)).replace("{time}", rng.choice(TIMES))
    c = rng.choice(cl_list)
    if rng.random() < 0.3:
        c = c + " " + rng.choice(TIMES)
    return c


def serious_clause(rng, cat=None):
    cat = cat or rng.choice(list(SERIOUS))
    return cat, phrase_from(rng, SERIOUS[cat]["np"], SERIOUS[cat]["cl"])


def mild_clause(rng):
    return phrase_from(rng, MILD["np"], MILD["cl"])


def negation_clause(rng, exclude=None):
    cats = [c for c in NEGATED if c != exclude]
    return rng.choice(NEGATED[rng.choice(cats)])


def join(rng, clauses):
    out = clauses[0]
    for c in clauses[1:]:
        sep = rng.choice([". ", ", ", " and ", "; ", " - ", ". ", ".  ", " but ", ", also ", "\n"])
        if out.endswith((".", "!", "?")) and sep[0] in ".,;":
            sep = " "
        out = out + sep + c
    return out


def serious_report(rng):
    cat, core = serious_clause(rng)
    mode = rng.random()
    clauses = [core]
    if mode < 0.30:
        pass
    elif mode < 0.55:
        clauses.insert(rng.randrange(2), mild_clause(rng))          # mild + serious
    elif mode < 0.68:
        clauses.append(negation_clause(rng, exclude=cat))            # serious, other thing negated
        rng.shuffle(clauses)
    elif mode < 0.80:
        clauses.append(rng.choice(SERIOUS_FOLLOWUP))
    elif mode < 0.88:
        clauses = [mild_clause(rng), mild_clause(rng)]
        clauses.insert(rng.randrange(3), core)                         # serious buried between mild ones
    elif mode < 0.90:
        clauses = [rng.choice(NEUTRAL + ["felt fine in the morning", "was ok at first"]), "then " + core]
    elif mode < 0.94:
        clauses = [mild_clause(rng) + rng.choice([", otherwise fine", ", other than that ok", " but nothing else"]),
                   rng.choice(["but ", "except ", "then ", "and then ", ""]) + core]
    else:
        _, second = serious_clause(rng)
        clauses.append(second)
    return clauses


def not_serious_report(rng):
    mode = rng.random()
    if mode < 0.20:
        clauses = [mild_clause(rng)]
    elif mode < 0.45:
        clauses = [mild_clause(rng), mild_clause(rng)]
    elif mode < 0.72:
        clauses = [mild_clause(rng), negation_clause(rng)]
        if rng.random() < 0.4:
            clauses.append(negation_clause(rng))
        if rng.random() < 0.5:
            rng.shuffle(clauses)
    elif mode < 0.84:
        clauses = [rng.choice(NEUTRAL)]
        if rng.random() < 0.8:
            clauses.append(negation_clause(rng))
    elif mode < 0.94:
        clauses = [rng.choice(HARD_NEGATIVE)]
        if rng.random() < 0.5:
            clauses.insert(rng.randrange(2), mild_clause(rng))
    else:
        clauses = [mild_clause(rng), mild_clause(rng), mild_clause(rng)]
    return clauses


def add_typo(rng, text):
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    if not idx:
        return text
    i = rng.choice(idx)
    w = list(words[i])
    k = rng.randrange(1, len(w) - 1)
    op = rng.randrange(3)
    if op == 0:
        w[k], w[k + 1] = w[k + 1], w[k]
    elif op == 1:
        del w[k]
    else:
        w.insert(k, w[k])
    words[i] = "".join(w)
    return " ".join(words)


def surface(rng, text):
    """Applies label-independent surface noise: typos, apostrophes, casing, punctuation."""
    if rng.random() < 0.2:
        text = add_typo(rng, text)
    if rng.random() < 0.25:
        text = text.replace("'", "")
    r = rng.random()
    if r < 0.3:
        text = text.lower()
    elif r < 0.35:
        text = text.upper()
    elif r < 0.8:
        text = text[0].upper() + text[1:]
    r = rng.random()
    if r < 0.35 and text[-1] not in ".!?":
        text = text + rng.choice([".", ".", "!", "!!", "?", "..."])
    return text


def make_report(rng, label):
    clauses = serious_report(rng) if label == 1 else not_serious_report(rng)
    if rng.random() < 0.35:
        clauses.insert(0, rng.choice(OPENERS).rstrip(":.,-").strip() if rng.random() < 0.3 else rng.choice(OPENERS))
    if rng.random() < 0.3:
        clauses.append(rng.choice(CLOSERS))
    text = clauses[0]
    for c in clauses[1:]:
        if text.endswith((":", ",", "-")) or text.lower() in ("so", "ok so"):
            text = text + " " + c
        else:
            text = join(rng, [text, c])
    text = fill(rng, text)
    text = re.sub(r"[ \t]+", " ", text).strip()
    return surface(rng, text)


def split_of(text):
    bucket = int(hashlib.sha256(text.lower().encode("utf-8")).hexdigest(), 16) % 100
    if bucket < 75:
        return "train"
    if bucket < 85:
        return "val"
    return "test"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=20240521)
    ap.add_argument("--per-class", type=int, default=2000)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "data", "sae", "corpus.jsonl"))
    args = ap.parse_args()

    rng = random.Random(args.seed)
    seen = set()
    rows = []
    counts = {0: 0, 1: 0}
    attempts = 0
    while min(counts.values()) < args.per_class:
        attempts += 1
        if attempts > 200 * args.per_class:
            raise SystemExit("could not generate enough unique texts")
        label = 0 if counts[0] <= counts[1] else 1
        text = make_report(rng, label)
        key = text.lower()
        if key in seen:
            continue
        seen.add(key)
        counts[label] += 1
        rows.append({"text": text, "label": label, "split": split_of(text)})

    out = os.path.normpath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    by_split = {}
    for r in rows:
        by_split.setdefault(r["split"], [0, 0])[r["label"]] += 1
    print(f"wrote {len(rows)} rows to {out}")
    for s in ("train", "val", "test"):
        n0, n1 = by_split.get(s, [0, 0])
        print(f"  {s:5s}: {n0 + n1:5d} (not_serious {n0}, serious {n1})")


if __name__ == "__main__":
    main()
