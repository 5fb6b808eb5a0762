#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Builds the synthetic ePRO corpus for the demo serious-adverse-event classifier.

Every text is generated from the hand-written phrase lists and templates below;
no real patient data is involved. The output is deterministic for a given seed:

    /usr/bin/python3 scripts/sae/make_corpus.py [--seed 20261207] [--per-class 6000]
        [--out-of-scope 1600] [--out data/sae/corpus.jsonl]

Each line of the output is {"text": str, "label": 0|1|2, "kind": str, "split": "train"|"val"|"test"}.

label 0 = not_serious: mild symptoms, nothing, serious findings that are
          negated, worried about or hedged without happening, resolved mild
          symptoms, and hard negatives (serious words, no event for the patient);
label 1 = serious: at least one event meeting an ICH E2A seriousness criterion
          (death, life-threatening, hospitalisation or prolonged stay,
          disability or incapacity, congenital anomaly, overdose, medically
          important events) reported as having happened to the patient;
label 2 = out_of_scope: text the model should not judge (keyboard mash, lorem
          ipsum, greetings, off-topic messages, other languages).
"kind" names the generator branch (for error analysis only; not a feature).

The split is a function of the text alone (SHA-256 of the lowercased text), so
exact duplicates can never straddle train and test.

data/sae/probes.jsonl (the hand-written probe set) was written separately and
is never read here.
"""

import argparse
import hashlib
import json
import os
import random
import re

# ---------------------------------------------------------------------------
# Who the report is about. Reports are mostly first person; some are written
# by a relative or a site for the patient ("{who}" below).
# ---------------------------------------------------------------------------
WHO = ["my husband", "my wife", "my mum", "my mom", "my dad", "my father", "my mother", "my son", "my daughter",
       "my partner", "my brother", "my sister", "my grandmother", "my grandad", "the patient", "the participant",
       "our son", "our daughter", "my boyfriend", "my girlfriend", "the subject"]
# People whose events are NOT the patient's (hard negatives): not in the study.
OTHERS = ["my uncle", "my neighbour", "my neighbor", "a friend", "my friend", "my cousin", "a colleague",
          "my coworker", "my grandfather", "my aunt", "my best friend", "someone at church", "my boss",
          "a lady in the waiting room", "my friend's dad"]
ORGANS = ["kidneys", "liver", "heart", "lungs", "nerves", "eyes", "hearing", "spine"]
DEFECTS = ["a heart defect", "a hole in the heart", "a cleft lip", "a cleft palate", "spina bifida", "club feet",
           "a club foot", "missing fingers", "a missing kidney", "a brain malformation", "a malformed heart valve",
           "a neural tube defect", "a limb defect", "a birth defect", "a congenital heart problem",
           "a deformed arm", "no left hand", "a defect in the spine", "an abnormal heart", "a congenital anomaly"]
# Symptoms that take people to an emergency department (the visit is the serious part).
ER_SYMPTOMS = ["chest pain", "a racing heart", "bad stomach pain", "a high fever", "a swollen leg", "palpitations",
               "breathing problems", "a terrible headache", "non stop vomiting", "severe dizziness", "chest tightness",
               "a swollen face", "pain in my side", "a very fast heartbeat", "confusion", "a rash and fever"]
NUM_WORDS = ["two", "three", "four", "several", "2", "3", "a couple of", "multiple"]
WHERE = ["at work", "in the shower", "at the supermarket", "on the bus", "while cooking", "in the kitchen",
         "at the shops", "in the garden", "at church", "while driving", "on the stairs", "at my desk", "in the street"]
UNCONSCIOUS_FOR = ["a few seconds", "a minute", "two minutes", "about five minutes", "a while", "several minutes",
                   "half a minute", "ten minutes"]
INJURIES = ["i fell and broke my hip", "my ligament tore when i fell", "i damaged a nerve in my arm",
            "i broke my ankle badly", "my spine was injured in the fall", "the fracture did not heal right",
            "my shoulder dislocated and the nerve was damaged", "i hurt my back lifting", "the wound got infected to the bone"]
INJURIES_NP = ["the fall", "the fracture", "the operation on my leg", "the nerve injury", "the infection",
               "my hip surgery"]
DOCTORS = ["the consultant", "the specialist", "my doctor", "the orthopaedic team", "the physio", "the neurologist",
           "the gp"]
PERMANENT = ["the damage is permanent", "i will need a walking frame for good", "i wont get full movement back",
             "i cant go back to work", "it will never fully heal", "i will always need a stick",
             "i will not walk normally again", "i cant grip anything now", "i am disabled by it"]
STOOLS = ["stools", "poo", "poop", "bowel movements", "stool"]
BLACK = ["black", "tarry", "dark black", "tar like", "bloody", "black tarry"]
BLACK_IS = ["is black", "has turned black", "looks like tar", "is full of blood", "is dark and tarry"]
WEAK = ["dizzy", "lightheaded", "weak", "like i might pass out", "very weak and dizzy", "shaky and pale"]
REPORTERS = ["the family informed us", "the site was notified", "the family called the clinic",
             "reported by the daughter", "the gp informed the site", "the coroner has been told",
             "the hospital informed the study team", "the family let us know"]
DRIVERS = ["my wife", "my husband", "my son", "my daughter", "a neighbour", "my partner", "a friend"]

# ---------------------------------------------------------------------------
# Serious findings by ICH E2A criterion / medically important event. "cl" are
# first-person clauses, "who" clauses about someone reported for ({who}), and
# "np" noun phrases slotted into templates.
# ---------------------------------------------------------------------------
SERIOUS = {
    "death": {
        "np": [],
        "cl": [],
        "who": ["{who} died {time}", "{who} passed away {time}", "{who} was found dead {time}",
                "{who} did not survive", "{who} was pronounced dead at the hospital", "{who} died in their sleep",
                "we lost {who} {time}", "{who} has died", "{who} passed {time}", "{who} could not be resuscitated",
                "{who} stopped breathing and could not be revived", "{who} died after the infusion",
                "{who} died {d} days after the last dose", "reporting the death of {who}",
                "{who} collapsed and died", "{who} died suddenly at home", "sadly {who} has passed away",
                "{who} is dead", "{who} died from a bleed on the brain", "{who} died of heart failure {time}",
                "{who} died in intensive care", "{who} was declared dead", "fatal outcome for {who}",
                "{who} deceased {time}", "patient deceased", "subject died", "the participant died {time}",
                "{who} passed away peacefully in hospital", "{who} died on the way to hospital",
                "{who} never woke up", "{who} died in a&e", "{who} died in their sleep {time}",
                "{who} died at home {time}", "{who} has sadly died", "{who} passed away in the night",
                "{who} was found unresponsive and had died", "{who} was found dead in bed {time}",
                "they found {who} dead {time}", "{who} was discovered dead {time}", "{who} died unexpectedly {time}",
                "{who} died, {reporter} {time}", "{reporter}: {who} has died", "{who} was found lifeless {time}",
                "{who} was dead when the ambulance arrived"],
    },
    "life_threatening": {
        "np": ["a cardiac arrest", "a life threatening reaction", "septic shock", "respiratory arrest",
               "a dangerously low blood pressure", "an oxygen level of {o2} percent", "multi organ failure",
               "a near fatal reaction", "sepsis"],
        "cl": ["my heart stopped", "i had a cardiac arrest", "they had to do cpr on me", "they had to resuscitate me",
               "i was put on a ventilator", "i was put on life support", "they said it was life threatening",
               "i almost died", "i nearly died", "my oxygen fell to {o2} percent", "i went into septic shock",
               "they had to shock my heart", "i was unresponsive and they called a code", "they had to intubate me",
               "i went into shock", "my sugar dropped to {glu} and i was unconscious",
               "they used the defibrillator on me", "i stopped breathing", "i had no pulse",
               "the doctor said i could have died", "i was close to death", "they said i was lucky to be alive",
               "my blood pressure crashed and i was barely conscious", "my organs started failing",
               "they had to bring me back", "i needed rescue breaths", "i was in a coma for two days"],
        "who": ["{who} had a cardiac arrest", "{who} needed cpr", "{who} nearly died", "{who} stopped breathing",
                "{who} was put on a ventilator", "{who} went into septic shock", "{who} had to be resuscitated"],
    },
    "hospital": {
        "np": ["a hospital admission", "an ambulance ride to the hospital", "an er visit", "an emergency admission",
               "a stay in intensive care", "a hospital stay of {n} days", "emergency surgery", "an icu admission"],
        "cl": ["i was admitted to hospital", "got admitted {time}", "spent {n} nights in hospital",
               "they kept me in overnight", "i am in the icu", "i was in intensive care", "i am on the ward",
               "i was an inpatient for {n} days", "my hospital stay was extended", "they kept me in {n} more days",
               "i was readmitted", "i had emergency surgery", "the ambulance took me to a&e", "went to the er",
               "ended up in the emergency room", "went to casualty and they admitted me", "i was hospitalised",
               "i was hospitalized", "i am writing this from my hospital bed", "they moved me to intensive care",
               "discharged today after {n} days in hospital", "admitted for iv antibiotics",
               "they would not let me go home", "i was taken to hospital by ambulance", "i'm in hospital",
               "im in the hospital", "spent the night in the emergency department", "was admitted to the ward",
               "got kept in for observation overnight", "my discharge was delayed because i got worse",
               "they had to operate on me urgently", "i have been in hospital since {weekday}",
               "had to go to the emergency room", "my wife drove me to the er", "stayed in hospital for a week",
               "they admitted me to the cardiac unit", "went to a and e and was kept in",
               "i was transferred to the icu", "paramedics took me in", "i was in hospital from {weekday} to {weekday}",
               "i was in hospital for {n} days", "i was in hospital all week", "i've been in hospital since {date}",
               "i spent the weekend in hospital", "i had to stay in hospital",
               "went to the er {time} with {sym}", "had to go to a&e {time} because of {sym}",
               "ended up in the emergency room with {sym}", "went to casualty with {sym}",
               "{driver} took me to the er with {sym}", "i was seen in the emergency department for {sym}",
               "rushed to a&e with {sym}", "an ambulance took me in with {sym}", "i went to the er for {sym}",
               "had an er visit for {sym} {time}", "i ended up in a and e because of {sym}",
               "went to the emergency room because of {sym}", "{sym} so i went to the er",
               "{sym}, ended up in a&e"],
        "who": ["{who} was admitted to hospital", "{who} is in intensive care", "{who} was hospitalised {time}",
                "{who} was taken to a&e by ambulance", "{who} has been in hospital for {n} days",
                "{who} was readmitted", "{who} needed emergency surgery", "{who} is on the ward"],
    },
    "disability": {
        "np": ["permanent damage to my {organ}", "permanent nerve damage", "lasting damage to my {organ}",
               "permanent hearing loss", "permanent vision loss", "paralysis in my legs"],
        "cl": ["i can no longer walk", "i lost my hearing in one ear for good", "i went blind in one eye",
               "i cant work anymore because of it", "i had to give up my job", "i am now in a wheelchair",
               "i cant use my right hand anymore", "i cant use my left arm anymore", "i need dialysis now",
               "i cant look after myself anymore", "the doctors say my sight will not come back",
               "it has left me disabled", "i can't do my daily tasks anymore", "i am paralysed from the waist down",
               "i cant dress or wash myself now", "my hearing is gone and will not return",
               "i need a walking frame now", "i had to stop working", "i am bedbound since the reaction",
               "i can't drive or work anymore", "my memory is ruined and i cant manage on my own",
               "the damage to my {organ} is permanent", "i need help with everything now",
               "the specialist said the nerve damage is permanent", "i've lost the use of my legs",
               "i cannot see out of my left eye anymore", "i'm now deaf in one ear",
               "{injury} and {doc} says {perm}", "{injury}, {perm} according to {doc}",
               "after {injury2} {doc} told me {perm}", "{injury}; {perm}"],
        "who": ["{who} can no longer walk", "{who} is now blind in one eye", "{who} is now in a wheelchair",
                "{who} needs dialysis now", "{who} was left disabled"],
    },
    "congenital": {
        "np": [],
        "cl": ["my baby was born with {defect}", "our baby has {defect}", "the scan showed {defect} in the baby",
               "the baby was born with {defect}", "our son was born with {defect}",
               "our daughter was born with {defect}", "i took the drug while pregnant and the baby has {defect}",
               "the newborn has {defect}", "they found {defect} on the {wk} week scan",
               "my newborn is in the nicu with {defect}", "baby born with {defect}",
               "the ultrasound found {defect}", "i was on the study drug in early pregnancy and the baby has {defect}",
               "my partner was in the trial when we conceived and our baby has {defect}",
               "i lost the baby at {wk} weeks and they found abnormalities", "i had a miscarriage at {wk} weeks",
               "the baby was stillborn", "our baby has a congenital defect"],
        "who": [],
    },
    "overdose": {
        "np": ["an overdose", "an accidental overdose", "a double dose by mistake", "an overdose of my tablets"],
        "cl": ["i took an overdose", "i overdosed on my tablets", "i took {k} tablets at once",
               "i took double my dose by mistake", "i took the whole pack", "i swallowed {k} pills",
               "i took too many pills", "i took {x} times the prescribed dose", "the pharmacy gave me {x} times the dose",
               "i injected twice by accident", "i took my morning dose three times", "i took a weeks worth at once",
               "i took a handful of my pills", "i took {k} of my sleeping tablets", "i took way more than i should have",
               "i accidentally took my dose twice", "i took {k} capsules on purpose", "overdosed on paracetamol",
               "i took the wrong strength, much higher than prescribed", "i used two pens instead of one",
               "i took a whole bottle of my pills"],
        "who": ["{who} took an overdose", "{who} swallowed {k} of my pills", "{who} got into my tablets and ate some",
                "{who} took {k} tablets at once", "{who} took double the dose by mistake",
                "{who} overdosed {time}", "{who} took the whole strip", "{who} took their tablets {x} times today",
                "{who} forgot and took the dose again and again", "{who} took someone else's pills by mistake"],
    },
    "heart_attack": {
        "np": ["a heart attack", "a myocardial infarction", "an mi", "a cardiac event", "an acute coronary syndrome",
               "a heart atack", "a massive heart attack", "a minor heart attack"],
        "cl": ["i had a heart attack", "they said it was a heart attack", "they put {k} stents in",
               "my troponin was high and they said heart attack", "the ecg showed a heart attack",
               "the cardiologist said i had a heart attack", "i was rushed to the cath lab",
               "crushing chest pain going down my left arm", "my chest felt like an elephant was sitting on it",
               "chest pain and sweating and they said it was my heart", "i had a heart attak",
               "had a mild heart attack", "the doctors confirmed a heart attack"],
        "who": ["{who} had a heart attack", "{who} had an mi {time}", "{who} had a heart attack {time}",
                "{who} needed stents after a heart attack"],
    },
    "stroke": {
        "np": ["a stroke", "a mini stroke", "a tia", "a brain bleed", "a bleed on the brain", "a clot in my brain",
               "face drooping on one side", "slurred speech", "sudden weakness down one side"],
        "cl": ["i had a stroke", "they said i had a mini stroke", "the scan showed a stroke", "my face drooped on one side",
               "my speech went slurred", "i couldnt move my right arm", "my left side went numb and weak",
               "i lost my words and could not speak", "my mouth went crooked", "they found a clot in my brain",
               "my face dropped on one side and my arm went weak", "i suddenly couldnt speak properly",
               "i had a tia", "they said it was a bleed on the brain", "half my face went numb",
               "my words came out wrong and my arm was dead", "i had a strok", "i could not lift my arm and my face fell"],
        "who": ["{who} had a stroke", "{who} had a tia {time}", "{who}'s face drooped and speech was slurred",
                "{who} suddenly couldnt talk and one side went weak"],
    },
    "anaphylaxis": {
        "np": ["anaphylaxis", "an anaphylactic reaction", "anaphylactic shock", "throat swelling",
               "a swollen tongue", "swelling of my lips and tongue", "a severe allergic reaction",
               "hives and wheezing", "facial swelling and wheezing"],
        "cl": ["my throat is closing up", "my throat closed up", "my tongue swelled up", "my lips swelled up and i was wheezing",
               "i had to use my epipen", "they gave me adrenaline", "i needed two shots of epinephrine",
               "i went into anaphylactic shock", "my face swelled up and i could not swallow",
               "my airway was closing", "my throat got tight and i couldnt swallow", "i had anaphylaxis",
               "i broke out in hives all over and my throat swelled", "my eyes swelled shut and i was wheezing",
               "severe allergic reaction right after the dose", "my lips and tongue blew up",
               "had an anaphylactic reaction", "i had anaphalaxis"],
        "who": ["{who} had anaphylaxis", "{who}'s throat swelled up", "{who} needed the epipen",
                "{who} went into anaphylactic shock"],
    },
    "suicidal": {
        "np": ["thoughts of killing myself", "suicidal thoughts", "thoughts of ending my life", "urges to end my life",
               "thoughts of hurting myself", "a suicide attempt"],
        "cl": ["i want to die", "i want to kill myself", "i've been thinking about killing myself",
               "i have thoughts of ending my life", "i tried to kill myself", "i attempted suicide",
               "i tried to hang myself", "i cut myself badly on purpose", "i cut my wrists",
               "i took pills to end it", "i have a plan to end my life", "i dont want to live anymore",
               "everyone would be better off without me", "i have been having suicidal thoughts",
               "i keep thinking about ending it all", "i wanted to jump off the bridge",
               "i tried to end my life", "i don't see the point of living", "i'm feeling suicidal",
               "i tried to take my own life", "i keep thinking i'd be better off dead", "i self harmed last night"],
        "who": ["{who} tried to kill themselves", "{who} attempted suicide", "{who} says they want to die",
                "{who} talks about ending their life", "{who} tried to take their own life"],
    },
    "seizure": {
        "np": ["a seizure", "a siezure", "convulsions", "a fit", "seizures", "a grand mal seizure", "an epileptic fit"],
        "cl": ["i had a seizure", "i had a fit", "i was convulsing", "i was fitting on the floor", "i had convulsions",
               "i had {n} seizures", "my whole body was jerking and i couldnt stop it", "had a siezure",
               "i had my first ever seizure", "i had a fit and bit my tongue", "i had an epileptic seizure",
               "i had my first epileptic fit", "i had {n} fits in one day", "i've started having seizures",
               "{numw} seizures {time}", "{numw} fits since {weekday}", "had {numw} seizures back to back",
               "i've had {numw} seizures since the last dose", "{numw} seizures this week",
               "i had {numw} fits overnight", "{numw} convulsions {time}"],
        "who": ["{who} had a seizure", "{who} was fitting", "{who} had a febrile convulsion", "{who} had a fit {time}"],
    },
    "breathing": {
        "np": ["severe shortness of breath", "trouble breathing", "difficulty breathing", "shortness of breath at rest",
               "dificulty breathing", "labored breathing"],
        "cl": ["i can't breathe", "cant breath", "cant breathe", "i could not breathe", "i was gasping for air",
               "my lips went blue", "i couldn't get any air in", "i was struggling to breathe",
               "i can barely breathe", "it feels like i'm suffocating", "my inhaler isnt helping and i can't breathe",
               "i was choking for air", "i cant catch my breath even sitting still"],
        "who": ["{who} could not breathe", "{who} was gasping for air", "{who} turned blue"],
    },
    "consciousness": {
        "np": ["fainting", "a blackout", "loss of consciousness", "a collapse"],
        "cl": ["i passed out", "i fainted", "faintd", "dizzy and faintd", "i blacked out", "i lost consciousness",
               "i collapsed", "i woke up on the floor", "i keeled over", "i was out cold for a minute",
               "i fainted and hit my head", "i blacked out while driving", "i passed out at work",
               "i came round on the floor", "i fell unconscious", "i fainted twice",
               "lost consciousness for {dur2}", "lost consciousness {where}", "i lost consciousness for {dur2} {where}",
               "passed out for {dur2} {where}", "blacked out {where}", "was unconscious for {dur2}",
               "went unconscious {where}", "knocked out for {dur2} after fainting", "fainted {where} {time}",
               "i was out for {dur2} {where}", "collapsed {where} and was unconscious"],
        "who": ["{who} passed out", "{who} collapsed", "{who} could not be woken up", "{who} fainted"],
    },
    "bleeding": {
        "np": ["vomiting blood", "coughing up blood", "black tarry stools", "heavy bleeding that wont stop",
               "blood in my vomit", "a nosebleed that would not stop for hours", "bleeding that will not stop"],
        "cl": ["i threw up blood", "i'm bleeding heavily and it won't stop", "i coughed up blood",
               "my stool is black and tarry", "there was a lot of blood in the toilet", "i cant stop the bleeding",
               "i puked blood", "i am soaking through pads every hour", "my nose has bled for hours",
               "my {stool1} {blackis} and i feel {weak}", "{black} {stool} {time} and feeling {weak}",
               "{black} {stool} and i'm {weak}", "there is blood in my {stool} and i feel {weak}",
               "i keep having {black} {stool}", "blood from my back passage and i feel {weak}",
               "i have bruises everywhere and my gums keep bleeding"],
        "who": ["{who} vomited blood", "{who} is bleeding heavily"],
    },
    "skin": {
        "np": ["a rash with blisters all over", "skin peeling off in sheets", "a blistering rash and mouth sores",
               "stevens johnson syndrome", "blisters on my skin and eyes"],
        "cl": ["my skin is blistering and peeling", "my skin is coming off", "the rash blistered and spread everywhere",
               "i have sores in my mouth and my skin is peeling", "they said it was stevens johnson",
               "big blisters all over my body", "my skin is peeling off and my eyes burn"],
        "who": ["{who}'s skin is blistering and peeling"],
    },
    "medically_important": {
        "np": ["liver failure", "jaundice", "pancreatitis", "myocarditis", "a pulmonary embolism", "a blood clot in my lung",
               "a dvt", "a blood clot in my leg", "kidney failure", "acute kidney injury", "very low white cells",
               "neutropenic sepsis", "a heart rate of {hr} that wont come down", "a fever of 104 and a stiff neck",
               "severe confusion", "yellow skin and eyes", "a dangerously low sodium", "a dangerously high potassium",
               "an irregular heartbeat needing a shock", "meningitis", "a collapsed lung"],
        "cl": ["my skin and eyes turned yellow", "my liver tests are {x} times normal", "my kidneys stopped working",
               "they found a clot in my lung", "i got a blood clot in my leg", "my white count is dangerously low",
               "my heart rate went to {hr} and would not come down", "i was so confused i didnt know where i was",
               "they said my heart muscle is inflamed", "i had pancreatitis", "my heart was in a dangerous rhythm",
               "they had to cardiovert me", "my platelets dropped to almost nothing", "i had a fever of 104 and a stiff neck",
               "my lung collapsed"],
        "who": ["{who} turned yellow", "{who} got a blood clot in the lung", "{who} became very confused"],
    },
}

# ---------------------------------------------------------------------------
# Negation material per serious area: nouns (for "no {n}") and verbs (for
# "I did not {v}" / "I have not {vpp}").
# ---------------------------------------------------------------------------
NEG_NOUNS = ["chest pain", "shortness of breath", "trouble breathing", "wheezing", "seizures", "fits", "convulsions",
             "fainting", "blackouts", "loss of consciousness", "anaphylaxis", "allergic reaction", "throat swelling",
             "swelling of my lips or tongue", "hives", "heart attack", "stroke", "numbness or weakness",
             "slurred speech", "face drooping", "suicidal thoughts", "thoughts of self harm",
             "thoughts of ending my life", "bleeding", "blood in my stool", "blood in my vomit", "blisters",
             "peeling skin", "mouth sores", "overdose", "hospital admission", "er visit", "ambulance",
             "palpitations", "racing heart", "confusion", "jaundice", "yellowing of my eyes", "blood clots",
             "swelling in my legs", "vision loss", "hearing loss", "cardiac arrest", "birth defects",
             "problems with the pregnancy", "severe reaction", "serious side effects"]
NEG_VERBS = [("faint", "fainted"), ("pass out", "passed out"), ("black out", "blacked out"),
             ("lose consciousness", "lost consciousness"), ("have a seizure", "had a seizure"),
             ("have a fit", "had a fit"), ("go to hospital", "been to hospital"), ("go to the er", "been to the er"),
             ("need an ambulance", "needed an ambulance"), ("get admitted", "been admitted"),
             ("need my epipen", "needed my epipen"), ("struggle to breathe", "struggled to breathe"),
             ("have a heart attack", "had a heart attack"), ("have a stroke", "had a stroke"),
             ("take too many", "taken too many"), ("double my dose", "doubled my dose"),
             ("overdose", "overdosed"), ("want to hurt myself", "wanted to hurt myself"),
             ("think about suicide", "thought about suicide"), ("vomit blood", "vomited blood"),
             ("collapse", "collapsed"), ("fall", "fallen"), ("stop breathing", "stopped breathing")]
NEG_NOUN_T = ["no {n}", "No {n}", "no {n} at all", "no signs of {n}", "I have not had any {n}",
              "I haven't had any {n}", "havent had any {n}", "there was no {n}", "there has been no {n}",
              "denies {n}", "nothing like {n}", "without any {n}", "free of {n}", "{n}: no", "{n} - none",
              "no {n} whatsoever", "zero {n}", "I have had no {n}", "never had any {n}", "not had any {n}",
              "no {n} so far", "no more {n}", "did not have any {n}", "didn't have any {n}", "no {n} this time",
              "no {n} or anything like that", "{n}? no", "no sign of any {n}", "not any {n}"]
NEG_VERB_T = ["I did not {v}", "I didn't {v}", "didnt {v}", "I have not {vpp}", "I haven't {vpp}", "never {vpp}",
              "I did not {v} at all", "I never {vpp}", "did not {v}", "I have never {vpp}", "I did not {v} or anything",
              "at no point did I {v}", "I didn't {v} though", "nor did I {v}"]
NEG_FIXED = ["breathing is fine", "I can breathe fine", "my chest doesnt hurt", "my speech is normal", "vision is fine",
             "my throat and lips are fine", "heart is fine", "not suicidal", "mood is ok, no dark thoughts",
             "the baby is healthy", "the baby was born healthy", "scans of the baby were normal",
             "I took the right dose", "I took exactly what was prescribed", "I'm not in hospital",
             "nobody had to call an ambulance", "I stayed home the whole time", "no one had to take me anywhere",
             "my blood tests were normal", "my liver tests came back fine", "ecg was normal", "the scan was clear",
             "nothing serious", "nothing dangerous", "no need for a doctor", "didn't need any treatment"]

# ---------------------------------------------------------------------------
# Mild findings (not serious on their own), neutral diary lines, daily life.
# ---------------------------------------------------------------------------
MILD_NP = ["a mild headache", "a headache", "a slight headache", "tiredness", "a bit of nausea", "slight nausea",
           "a queasy stomach", "a sore arm where I got the shot", "injection site soreness",
           "redness at the injection site", "a small itchy rash on my arm", "a mild rash", "trouble sleeping",
           "dry mouth", "a runny nose", "mild diarrhea", "mild diarrhoea", "constipation", "muscle aches",
           "stiff joints", "low appetite", "a metallic taste", "hot flashes", "a low grade fever of 99.8", "chills",
           "itchy skin", "bloating", "heartburn", "a mild cough", "a stuffy nose", "a sore throat", "brain fog",
           "leg cramps", "back pain", "vivid dreams", "night sweats", "a bruise at the injection site",
           "chapped lips", "an upset stomach", "a headahce", "nausia", "a tension headache",
           "some dizziness when I stand up fast", "a small nosebleed that stopped quickly",
           "a bit of blood when I brushed my teeth", "mild swelling at the injection site", "achy legs",
           "an annoying rash", "a stomach ache", "gas", "sneezing", "watery eyes", "a mild fever", "fatigue",
           "a dry cough", "tingling in my fingers", "lower back pain", "a sore neck", "cramps", "drowsiness",
           "ringing in my ears", "a cold", "a bit of a cold", "hair thinning", "weight gain", "acne", "spots",
           "dry skin", "an itchy scalp", "hiccups", "burping", "indigestion", "wind", "loose stools",
           "puffy ankles", "mild ankle swelling", "pins and needles", "an eyelid twitch", "a croaky voice",
           "heavier periods", "mood swings", "irritability", "low mood", "yawning", "sleepiness",
           "a dull ache in my knees", "sore gums", "a blocked nose", "a mild temperature", "a hoarse voice",
           "an earache", "a twitchy eye", "a stiff neck from sleeping badly", "a small lump where the needle went in"]
MILD_CL = ["I'm so tired", "slept badly again", "felt a bit off today", "my stomach was a bit upset after breakfast",
           "my arm is sore where they gave me the shot", "feeling ok just tired", "couldnt sleep last night",
           "my mouth is really dry", "I feel kinda nauseous", "feel tired all the time", "im exhausted",
           "a bit dizzy when i got up", "felt queasy after the pill", "the injection spot is red and itchy",
           "i have a little rash on my wrist", "head hurts a bit", "my joints ache in the morning",
           "been sneezing all day", "my legs feel heavy", "had the runs this morning", "i keep waking up at 3am",
           "im a bit grumpy", "food tastes weird", "my skin is a little itchy", "feeling a bit low today",
           "i feel anxious before my dose", "my nose is stuffed up", "i feel bloated", "my throat is scratchy",
           "my back is stiff", "i have a headache", "feeling tierd", "stomach feels off", "cant sleep",
           "im a little shakey", "my eyes are dry", "had some cramping", "bit of a sore throat",
           "ive been feeling kind of foggy", "i've gone off my food", "my hair is falling out a bit",
           "i've put on a bit of weight", "i keep burping after the tablets", "my ankles swell a little by evening",
           "my periods are heavier", "i feel flat", "i have no energy", "i feel sleepy after my dose",
           "my knees ache on the stairs", "my skin is dry", "i had a weird dream", "lightheaded for a second",
           "my tummy is a bit unsettled", "i've got a cold", "i feel a bit sick in the mornings", "i have a cough",
           "the needle spot is bruised", "i'm more irritable than usual"]
NEUTRAL = ["no side effects today", "feeling fine", "nothing new to report", "all good", "feeling normal",
           "doing well", "no problems", "no new symptoms", "feel great actually", "everything is ok",
           "nothing unusual", "same as yesterday, doing ok", "feeling better than last week", "no complaints",
           "I'm fine", "all normal today", "no issues with the meds so far", "nothing to report",
           "good day today", "all fine here", "feeling like myself", "no changes"]
LIFE = ["walked the dog", "went to work as usual", "ate a good breakfast", "did some gardening", "watched tv",
        "took my tablets with food", "went shopping with my daughter", "had a quiet day", "cooked dinner",
        "went for a short walk", "worked from home", "had visitors", "did the laundry", "read a book",
        "went to the gym", "slept in", "had lunch with a friend", "took the kids to school", "drove to town",
        "went swimming", "did the crossword", "picked up my prescription", "had coffee in the garden"]

# Mild sensations in any body part, with how often or how much.
BODY = ["arm", "arms", "leg", "legs", "knee", "knees", "toes", "fingers", "hands", "feet", "back", "neck", "shoulder",
        "shoulders", "hip", "wrist", "ankle", "elbow", "jaw", "scalp", "face", "cheek", "lips", "tummy", "stomach",
        "side", "calf", "thigh", "eyes", "ears", "gums", "chest muscles", "lower back", "skin", "nose", "throat"]
SENSATION = ["a dull ache in my {b}", "some stiffness in my {b}", "tingling in my {b}", "pins and needles in my {b}",
             "an itch on my {b}", "a twinge in my {b}", "a bit of soreness in my {b}", "mild cramp in my {b}",
             "a small bruise on my {b}", "dry skin on my {b}", "a few spots on my {b}", "a slight rash on my {b}",
             "my {b} feels a bit stiff", "my {b} aches a little", "my {b} is a bit sore", "my {b} itches",
             "a small lump on my {b}", "slight swelling of my {b}", "my {b} feels tired", "a pulled muscle in my {b}"]
HOW_OFTEN = ["now and then", "on and off", "for a moment", "occasionally", "at times", "a little", "in the mornings",
             "after walking", "when I wake up", "for a few minutes", "every so often", "since starting",
             "slightly", "a tiny bit", "from time to time"]
# Small, clearly benign changes people report.
SMALL_CHANGES = ["I've put on {k} pounds since starting", "gained a couple of kilos", "lost a bit of weight",
                 "my skin is drier than usual", "my hair feels thinner", "my nails are brittle", "I need the loo more often",
                 "I'm a bit more forgetful", "my sense of smell is a bit off", "I crave sweets", "I feel a bit hot at night",
                 "my eyes water in the wind", "I yawn a lot", "my feet get cold", "I sweat more than usual",
                 "my voice is a bit hoarse", "I'm thirstier than normal", "my ears pop", "I get the hiccups after dosing"]
# Serious-sounding symptom with a benign cause (not serious).
BENIGN_CAUSE = ["a sore chest from coughing", "tight chest from the cold air, fine indoors", "out of breath after running for the bus",
                "dizzy from standing up too fast", "heart racing after two coffees", "chest felt tight after carrying shopping, gone after a rest",
                "a sore chest from the gym", "short of breath climbing the stairs like always", "my heart pounded during the scary film",
                "a bleeding gum after flossing", "a nosebleed from the dry air that stopped quickly",
                "a cut finger from the kitchen knife, plaster on", "lightheaded because I skipped lunch",
                "shaky because I hadn't eaten", "wheezy in the cold, inhaler fixed it", "a headache from the hot sun",
                "blurry eyes from too much screen time", "numb leg from sitting cross legged", "my arm went dead from sleeping on it"]
RESOLVE_ACTIONS = ["sitting down", "a drink of water", "lying down", "some fresh air", "a rest", "a snack",
                   "a good night's sleep", "pinching my nose", "a cold compress", "a cup of tea", "a walk"]
NEG_CARE = ["I have not needed a doctor", "didn't need to see anyone", "no need for the gp", "no doctor needed",
            "I did not need any treatment", "didn't have to call anyone", "haven't needed any medical help",
            "no visits to the doctor", "nobody needed to check on me"]
TESTS = ["blood test", "ecg", "scan", "x-ray", "mri", "check up", "blood pressure check", "eye test", "heart tracing",
         "liver test", "urine test", "chest x-ray", "ultrasound"]
FACILITY = ["at the hospital", "at the clinic", "at my gp", "at the surgery", "at the hospital clinic", "at the trial site",
            "in outpatients", "at the pharmacy"]
NORMAL = ["was normal", "came back normal", "was fine", "was all clear", "showed nothing", "was ok", "came back fine"]
NAMES = ["Patel", "Smith", "Jones", "Nguyen", "Garcia", "Okafor", "Kowalski", "Murphy", "Chen", "Haddad"]
AGES = [str(a) for a in range(19, 89, 3)]
CLINICAL_TAIL = ["cause unknown", "cause not yet known", "autopsy pending", "outcome fatal", "reported to the sponsor",
                 "details to follow", "site informed", "SAE form to follow", "relatedness unknown"]

# Worry / hedging without an event, and resolution of mild symptoms.
WORRY_T = ["worried it might be {a} but {ok}", "I was scared I was having {a} but {ok}", "thought it was {a} but {ok}",
           "I was afraid it was {a}, {ok}", "I panicked it could be {a} but {ok}", "worried about {n} but {ok}",
           "I'm afraid of getting {n} but nothing has happened", "could this drug cause {n}? I feel fine",
           "the leaflet says it can cause {n}, is that true?", "should I worry about {n}? I have not had any",
           "I keep reading about {n} online, nothing like that here", "I'm anxious about {n} but I'm fine",
           "my friend had {a} on this drug, I'm fine", "is {n} a known side effect? just asking",
           "I worry I might get {n} from the next dose", "not sure if it could lead to {n}, I feel ok",
           "scared I'd had {a} but {ok}", "I thought I was having {a}, {ok}", "convinced it was {a} until {ok}",
           "I feared {a} but {ok}", "for a minute I thought it was {a} but {ok}", "I was frightened it was {a}; {ok}",
           "scared it was {a} but it was just {benign}", "worried I'd had {a}, turned out to be {benign}",
           "I thought it was {a} but it was only {benign}", "panicked about {a} but it was just {benign}"]
WORRY_A = ["a heart attack", "a stroke", "a blood clot", "an allergic reaction", "a seizure", "anaphylaxis",
           "something serious", "a bleed", "a serious reaction"]
WORRY_OK = ["it was just heartburn", "it turned out to be indigestion", "it was only a migraine",
            "the doctor said it was a pulled muscle", "the tests were normal", "the ecg was normal",
            "it passed after ten minutes", "the scan was clear", "it was just anxiety", "it was only a bruise",
            "it went away after an antacid", "my gp said it was nothing", "it was only a cold",
            "the nurse said it was fine", "the ultrasound was clear", "it was just wind",
            "my speech and arms were fine when I checked", "the symptoms faded within minutes",
            "the gp examined me and found nothing", "my blood pressure was normal", "it eased when I calmed down"]
BENIGN_DX = ["a migraine", "a panic attack", "cramp", "a trapped nerve", "low blood sugar", "a tension headache",
             "reflux", "a virus", "a pulled muscle", "anxiety", "trapped wind", "an ear infection", "a cold"]
HEDGE_T = ["not sure if it's the pills but {mild}", "not sure if this is related but {mild}",
           "maybe it's nothing, {mild}", "it might be a coincidence but {mild}", "I wonder if {mild} is from the drug",
           "could {mildnp} be a side effect?", "is {mildnp} normal?", "not sure if I should worry about {mildnp}",
           "possibly from the tablets, {mild}", "probably unrelated, {mild}", "I think the drug gives me {mildnp}"]
RESOLVE_T = ["took {remedy} and it went away", "{mild} but I took {remedy} and it went away",
             "had {mildnp}, took {remedy} and it settled", "{mild}, gone after {remedy}",
             "{mildnp} {time} which went away by {when}", "{mildnp} yesterday, fine today", "{mild}, better now",
             "{mildnp} that settled after {dur}", "{mild} but it passed after {dur}",
             "{mildnp} that cleared up by itself", "{mild} for {dur} and then it was gone", "{mildnp} on day one, fine since",
             "{mildnp}, back to normal now", "{mild} but {remedy} sorted it out", "{mildnp}, resolved without treatment",
             "{mild} for a moment, fine after {action}", "{mildnp} that stopped after {dur}", "{mildnp} which settled with {action}",
             "{mild}, {action} helped and it's gone", "{mildnp} lasted {dur} and then cleared up", "{mild} but it eased off after {action}"]
REMEDY = ["paracetamol", "ibuprofen", "tylenol", "an antacid", "a nap", "some water", "an antihistamine", "some rest",
          "a cup of tea", "a painkiller", "my inhaler", "some dry toast", "an early night"]
DUR = ["an hour", "a few minutes", "ten minutes", "a couple of hours", "a day", "two days", "a while", "half an hour"]
WHEN = ["the morning", "lunch", "the evening", "the next day", "bedtime", "the weekend"]

# Hard negatives: serious words, no event for the patient.
HARD_T = ["{other} died of {a} {years} ago, just for the family history", "{other} had {a} last year, unrelated",
          "{other} was hospitalised with flu, I'm fine", "I visited {other} in intensive care, {other_s} is not on the trial",
          "{other} had a seizure once, nothing to do with me", "my grandfather had a stroke in {year}, the form asked",
          "I watched a documentary about {n} and got nervous", "the leaflet lists {n} as a rare side effect",
          "I read online that this drug can cause {n}, I'm fine though", "the trial sheet talks about birth defects, we use contraception",
          "had a planned hospital appointment for a routine check, all fine", "my routine bloodwork at the hospital was normal",
          "follow up at the hospital clinic next week as planned", "{visit} {other} {inhosp} {time}",
          "I work as {role} in {dept}, {worknote}", "the nurse asked about {n} and I said no",
          "we talked about suicide prevention at work, I'm fine myself", "the pharmacist explained what to do if I took too many, I haven't",
          "my pregnancy is going well, the scan was perfect", "booked a check up at the cardiology clinic as planned",
          "this heat is killing me, otherwise okay", "I almost died laughing at the nurse's joke",
          "my heart skipped a beat when I saw the bill", "an ambulance went past my house",
          "I donated blood last week and felt fine", "my cat had a fit last year, i'm a worrier",
          "I'm dying to go on holiday", "my phone died so I'm late with the diary", "I killed it at the gym today",
          "the new overdose warning on the box made me double check, I took the right amount",
          "{other} overdosed years ago, I'm careful with my pills", "I had my flu jab at the hospital pharmacy",
          "my mum had a heart attack in {year}, family history only", "my dog had a seizure, the vet says he's fine",
          "drove past the a&e on the way home", "I'm a paramedic so I know what to watch for, nothing so far",
          "the baby is kicking well and the midwife is happy", "my sister's baby was born last week, all healthy",
          "I'm {role} in {dept}, {worknote}", "{worknote}, I'm {role} in {dept}", "I work nights in {dept}, {worknote}",
          "{visit} {other} {inhosp}, {other_s} is recovering", "spent the afternoon {inhosp} visiting {other}",
          "{visit} {other} {inhosp} after {their} operation", "drove {other} to {their} hospital appointment"]
ROLES = ["a nurse", "a paramedic", "a doctor", "a porter", "a care assistant", "a cleaner", "a pharmacist",
         "a receptionist", "a midwife", "a healthcare assistant", "an ambulance driver", "a radiographer"]
DEPTS = ["the emergency department", "a&e", "the icu", "intensive care", "the cardiac ward", "a hospice",
         "the stroke unit", "a nursing home", "the children's ward", "the er", "the maternity unit", "theatres"]
WORKNOTES = ["so my diary entries may come in late", "long shifts this week", "on nights this week",
             "busy week, no symptoms to report", "I fill this in after work", "nothing to report for me",
             "I may miss a diary day", "my hours change every week", "I'm fine myself",
             "sorry for the late entries"]
VISIT = ["visited", "went to see", "popped in to see", "I visited", "we visited", "went to visit"]
IN_HOSP = ["in hospital", "at the hospital", "on the ward", "in intensive care", "at the hospice",
           "on the maternity ward", "in the cardiac unit"]
YEARS = ["ten", "five", "twenty", "many", "a few", "two", "15", "30"]

# Things people add after a serious event (serious context).
FOLLOWUP = ["my husband called 911", "called my doctor right away", "the paramedics came", "they gave me oxygen",
            "they did a ct scan", "they gave me steroids and an iv", "they said it was a reaction to the new medication",
            "still feel scared", "i'm still shaking", "they told me to stop the study drug", "my wife drove me to urgent care",
            "nurse told me to come in right away", "i'm ok now", "i feel better now", "i'm home now",
            "they stopped the drug", "it was terrifying", "please call me", "i am recovering"]

OPENERS = ["Day {d} after dose {n}.", "Took my {mg}mg this morning.", "Week {w} update:", "Update:", "Entry for {date}:",
           "Hi,", "Hello doctor,", "{date}", "ok so", "Quick note -", "Dose {n} done.", "This is my day {d} diary.",
           "Been on the new med for {d} days.", "After my injection on {weekday},", "Not sure if this is related but",
           "So", "Hi team.", "Diary {date}.", "Re: side effects -", "Took {mg} mg at {clock}.", "After the second shot",
           "started the {mg}mg dose {weekday}.", "Hello,", "Good morning,", "Dear study team,", "Hi nurse,",
           "Writing for my mum.", "Reporting for the patient.", "Sorry to bother you,", "Just an update."]
CLOSERS = ["Will keep logging.", "pls advise", "not sure if this is related to the new med", "Thanks.", "lol",
           "Let me know if I should do anything.", "Will update tomorrow.", "thx", "Is this normal?",
           "Should I keep taking it?", "I'll mention it at my next visit.", "Taking my next dose tonight.",
           "Just letting you know.", "Otherwise ok.", ":(", "ugh", "Please call me.", "Wanted to report it.", "idk",
           "Anyone else get this?", "My BP was {bp} this morning.", "Temp {temp}.", "Thank you.", "Bye for now.",
           "Hope that helps.", "Regards."]
TIMES = ["since yesterday", "at 3am", "on {date}", "this morning", "last night", "since {weekday}",
         "{d} days after my second dose", "after taking {mg}mg", "about an hour after the injection",
         "for the past week", "around {clock}", "today", "yesterday afternoon", "right after my dose",
         "{h} hours after the shot", "earlier tonight", "over the weekend", "twice this week", "on {weekday}",
         "last week", "two days ago"]
NP_TEMPLATES = ["I have {np}", "I had {np}", "having {np}", "woke up with {np}", "{np}", "{np} {time}",
                "got {np} {time}", "I've had {np} {time}", "I'm having {np}", "experiencing {np}", "had {np} {time}",
                "been dealing with {np}", "I noticed {np}", "{np} started {time}", "still have {np}",
                "diagnosed with {np}", "they said I had {np}", "ended up with {np}", "suffered {np}"]
SERIOUS_NP_ONLY = ["diagnosed with {np}", "they said I had {np}", "suffered {np}"]
MILD_NP_TEMPLATES = [t for t in NP_TEMPLATES if t not in SERIOUS_NP_ONLY] + ["a bit of {np}", "just {np}"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "mon", "thurs"]

# ---------------------------------------------------------------------------
# Out of scope: keyboard mash, lorem ipsum, greetings, off-topic, other languages.
# ---------------------------------------------------------------------------
LOREM = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et "
         "dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea "
         "commodo consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla pariatur "
         "excepteur sint occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est laborum").split()
KEYROWS = ["qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890"]
GREETINGS = ["hello", "hi", "hey", "hi there", "good morning", "good evening", "good night", "thanks", "thank you",
             "ok", "okay", "bye", "see you", "hello?", "yo", "hiya", "cheers", "thank you very much", "ok thanks",
             "how are you", "hi how are you", "greetings", "hello is anyone there", "test", "testing", "ping"]
OFFTOPIC = ["what time does the clinic open", "can I change my password", "{tech} {broken}",
            "{tech} {broken} since {weekday}", "{tech} {broken}, can someone help", "how do I reset my pin", "please unsubscribe me", "what is the capital of {place}",
            "the quick brown fox jumps over the lazy dog", "buy cheap {thing} online now", "click here to win a {thing}",
            "my favourite team lost again", "the weather is nice today", "shopping list: {thing}, milk, bread",
            "can you recommend a good restaurant", "where do I park at the clinic", "is the office open on {weekday}",
            "who won the game last night", "I need to reschedule my appointment", "how do I upload a photo",
            "what is the wifi password", "my parcel has not arrived", "I like turtles", "remind me to call {place}",
            "the bus was late again", "happy birthday to my sister", "does anyone know a good plumber",
            "the screen is too small to read", "please send me the invoice", "can I get a refund",
            "the cat is sleeping on the keyboard", "meeting moved to {weekday}", "how much is the parking"]
TECH = ["the app", "my login", "the login page", "my password", "the website", "the diary page", "the reminder",
        "the sync", "my account", "the upload button", "the survey link", "the notification", "the app on my phone",
        "my pin"]
BROKEN = ["isn't working", "is not working", "doesnt work", "won't load", "keeps crashing", "is broken",
          "stopped working", "keeps logging me out", "won't let me in", "shows an error", "is frozen"]
PLACES = ["France", "Spain", "Peru", "Canada", "the bank", "the office", "Japan", "mum"]
THINGS = ["watches", "phones", "shoes", "a car", "eggs", "sunglasses", "a holiday", "bitcoin"]
FOREIGN = {
    "de": ["ich habe {x} kopfschmerzen", "mir ist schwindelig", "ich bin sehr müde", "mir geht es gut, danke",
           "ich habe fieber seit gestern", "ich kann nicht schlafen", "mein arm tut weh", "ich habe schmerzen in der brust",
           "ich konnte nicht atmen", "alles in ordnung heute", "mir ist übel nach der tablette",
           "guten tag, wie geht es ihnen", "ich war im krankenhaus"],
    "fr": ["j'ai mal à la tête", "je suis très fatigué", "ça va bien merci", "j'ai de la fièvre depuis hier",
           "je ne peux pas dormir", "j'ai mal au bras", "j'ai des nausées", "je n'arrive pas à respirer",
           "bonjour, comment allez-vous", "tout va bien aujourd'hui", "j'ai vomi ce matin", "j'étais à l'hôpital"],
    "es": ["me duele la cabeza", "estoy muy cansado", "estoy bien, gracias", "tengo fiebre desde ayer",
           "no puedo dormir", "me duele el brazo", "tengo náuseas", "no puedo respirar", "me duele el pecho",
           "hola, ¿cómo estás?", "todo bien hoy", "fui al hospital anoche"],
    "it": ["ho mal di testa", "sono molto stanco", "sto bene, grazie", "ho la febbre da ieri", "non riesco a dormire",
           "ho la nausea", "non so se è normale", "mi fa male il braccio", "buongiorno a tutti", "sono svenuto"],
    "pt": ["estou com dor de cabeça", "estou muito cansado", "estou bem, obrigado", "estou com febre",
           "não consigo dormir", "tenho náuseas", "bom dia, tudo bem?", "fui ao hospital"],
    "nl": ["ik heb hoofdpijn", "ik voel me een beetje moe", "het gaat goed, dank je", "ik heb koorts",
           "ik kan niet slapen", "ik ben misselijk", "goedemorgen"],
    "sv": ["jag har ont i huvudet", "jag mår bra idag", "jag är trött", "hej, hur mår du", "jag har feber"],
    "pl": ["boli mnie głowa", "mam zawroty głowy", "jestem zmęczony", "dzień dobry", "mam gorączkę"],
    "zh": ["我今天头疼", "我很累", "我发烧了", "你好", "谢谢", "我不能呼吸", "我睡不着"],
    "ja": ["頭が痛いです", "疲れました", "こんにちは", "ありがとう", "熱があります"],
    "ru": ["у меня болит голова", "я устал", "привет, как дела", "у меня температура", "спасибо"],
    "tr": ["başım ağrıyor", "çok yorgunum", "merhaba", "ateşim var", "teşekkürler"],
}
FOREIGN_X = {"de": ["starke", "leichte", "seit heute"]}


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
        return rng.choice([f"{h}pm", f"{h}am", f"{h}:{rng.choice(['00', '15', '30', '45'])}", f"{h} pm",
                           f"{h:02d}:{rng.randint(0, 59):02d}"])

    values = {
        "d": lambda: str(rng.randint(1, 30)), "n": lambda: str(rng.randint(2, 9)),
        "mg": lambda: rng.choice(["5", "10", "20", "25", "40", "50", "100", "150", "200", "500", "2.5", "0.5"]),
        "w": lambda: str(rng.randint(1, 12)), "date": date, "clock": clock,
        "weekday": lambda: rng.choice(WEEKDAYS), "h": lambda: str(rng.randint(1, 12)),
        "bp": lambda: f"{rng.randint(105, 145)}/{rng.randint(65, 92)}",
        "temp": lambda: rng.choice(["98.6", "99.1", "37.2", "36.8", "99.5", "37.0"]),
        "o2": lambda: str(rng.randint(70, 85)), "glu": lambda: rng.choice(["1.8", "2.1", "30", "1.5", "25"]),
        "k": lambda: str(rng.choice([8, 10, 12, 15, 20, 25, 30, 40, 50, 60])),
        "x": lambda: rng.choice(["two", "three", "ten", "5", "10", "4"]),
        "hr": lambda: str(rng.randint(160, 220)), "wk": lambda: str(rng.randint(8, 24)),
        "organ": lambda: rng.choice(ORGANS), "defect": lambda: rng.choice(DEFECTS),
        "who": lambda: rng.choice(WHO), "year": lambda: str(rng.randint(1980, 2020)),
        "place": lambda: rng.choice(PLACES), "thing": lambda: rng.choice(THINGS),
        "age": lambda: rng.choice(AGES), "name": lambda: rng.choice(NAMES),
        "sym": lambda: rng.choice(ER_SYMPTOMS), "numw": lambda: rng.choice(NUM_WORDS),
        "where": lambda: rng.choice(WHERE), "dur2": lambda: rng.choice(UNCONSCIOUS_FOR),
        "injury": lambda: rng.choice(INJURIES), "injury2": lambda: rng.choice(INJURIES_NP),
        "doc": lambda: rng.choice(DOCTORS), "perm": lambda: rng.choice(PERMANENT),
        "stool": lambda: rng.choice(STOOLS), "stool1": lambda: rng.choice(["poo", "stool", "poop"]), "black": lambda: rng.choice(BLACK),
        "blackis": lambda: rng.choice(BLACK_IS), "weak": lambda: rng.choice(WEAK),
        "reporter": lambda: rng.choice(REPORTERS), "driver": lambda: rng.choice(DRIVERS),
        "tech": lambda: rng.choice(TECH), "broken": lambda: rng.choice(BROKEN),
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)]() if m.group(1) in values else m.group(0), text)


def a_an(n):
    return ("an " if n[0] in "aeiou" else "a ") + n


# ---------------------------------------------------------------------------
# Clause makers.
# ---------------------------------------------------------------------------
def serious_clause(rng, cat=None):
    cat = cat or rng.choice(list(SERIOUS))
    entry = SERIOUS[cat]
    pools = []
    if entry["cl"]:
        pools.append(("cl", 0.55))
    if entry["np"]:
        pools.append(("np", 0.3))
    if entry["who"]:
        pools.append(("who", 0.15 if cat != "death" else 1.0))
    r = rng.random() * sum(w for _, w in pools)
    kind = pools[-1][0]
    for k, w in pools:
        if r < w:
            kind = k
            break
        r -= w
    if kind == "np":
        t = rng.choice(NP_TEMPLATES)
        c = t.replace("{np}", rng.choice(entry["np"])).replace("{time}", rng.choice(TIMES))
    else:
        c = rng.choice(entry[kind])
        if kind == "who":
            # Reported by someone else: "my dad was on the study drug and he ...".
            who = rng.choice(WHO)
            if rng.random() < 0.35:
                pron = rng.choice(["he", "she", "they"])
                frame = rng.choice(["{w} was on the study drug and ", "{w} is in the trial and ", "{w} started the tablets and ",
                                    "writing about {w}: ", "{w} had the infusion {time} and "])
                c = frame.replace("{w}", who) + c.replace("{who}", pron, 1)
            c = c.replace("{who}", who)
        if rng.random() < 0.3 and "{time}" not in c:
            c = c + " " + rng.choice(TIMES)
        c = c.replace("{time}", rng.choice(TIMES))
    return cat, c


def mild_clause(rng):
    r = rng.random()
    if r < 0.15:
        c = rng.choice(SENSATION).replace("{b}", rng.choice(BODY))
        return c + (" " + rng.choice(HOW_OFTEN) if rng.random() < 0.5 else "")
    if r < 0.22:
        return rng.choice(SMALL_CHANGES)
    if r < 0.26:
        return rng.choice(BENIGN_CAUSE)
    if r < 0.34:
        return rng.choice(WHO) + " " + rng.choice(["has", "had", "is getting", "woke up with", "complains of",
                                                   "mentioned"]) + " " + rng.choice(MILD_NP)
    if rng.random() < 0.45:
        t = rng.choice(MILD_NP_TEMPLATES)
        return t.replace("{np}", rng.choice(MILD_NP)).replace("{time}", rng.choice(TIMES))
    c = rng.choice(MILD_CL)
    if rng.random() < 0.25:
        c = c + " " + rng.choice(TIMES)
    return c


def negation_clause(rng):
    r = rng.random()
    if r < 0.55:
        return rng.choice(NEG_NOUN_T).replace("{n}", rng.choice(NEG_NOUNS))
    if r < 0.85:
        v, vpp = rng.choice(NEG_VERBS)
        return rng.choice(NEG_VERB_T).replace("{vpp}", vpp).replace("{v}", v)
    if r < 0.92:
        return rng.choice(NEG_FIXED)
    return rng.choice(NEG_CARE)


def negation_pair(rng):
    """'I did not faint and have had no seizures', 'no X, no Y', 'neither X nor Y'."""
    a, b = rng.sample(NEG_NOUNS, 2)
    v, vpp = rng.choice(NEG_VERBS)
    return rng.choice([f"I did not {v} and have had no {a}", f"no {a}, no {b}", f"no {a} and no {b}",
                       f"neither {a} nor {b}", f"I haven't {vpp} and there was no {a}", f"no {a} or {b}",
                       f"didn't {v}, no {a}", f"I have had no {a} and no {b}", f"{a}: none. {b}: none"])


def worry_clause(rng):
    t = rng.choice(WORRY_T)
    a = rng.choice(WORRY_A)
    n = rng.choice(NEG_NOUNS)
    return (t.replace("{a}", a).replace("{n}", n).replace("{ok}", rng.choice(WORRY_OK))
            .replace("{benign}", rng.choice(BENIGN_DX)))


def hedge_clause(rng):
    t = rng.choice(HEDGE_T)
    return t.replace("{mildnp}", rng.choice(MILD_NP)).replace("{mild}", mild_clause(rng))


def resolved_clause(rng):
    t = rng.choice(RESOLVE_T)
    return (t.replace("{mildnp}", rng.choice(MILD_NP)).replace("{mild}", mild_clause(rng))
            .replace("{remedy}", rng.choice(REMEDY)).replace("{dur}", rng.choice(DUR))
            .replace("{when}", rng.choice(WHEN)).replace("{time}", rng.choice(TIMES))
            .replace("{action}", rng.choice(RESOLVE_ACTIONS)))


def hard_negative_clause(rng):
    r = rng.random()
    if r < 0.12:
        # Healthcare workers mention their workplace; visitors mention a ward.
        t = rng.choice(["I work as {role} in {dept}, {worknote}", "I'm {role} in {dept}, {worknote}",
                        "{worknote}, I'm {role} in {dept}", "I work nights in {dept}, {worknote}",
                        "{visit} {other} {inhosp} {time}", "{visit} {other} {inhosp}, {other_s} is recovering",
                        "spent the afternoon {inhosp} visiting {other}", "{visit} {other} {inhosp} after {their} operation",
                        "I'm {role}, {worknote}", "back from a shift in {dept}, {worknote}"])
        pron, poss = rng.choice([("he", "his"), ("she", "her"), ("they", "their")])
        return (t.replace("{role}", rng.choice(ROLES)).replace("{dept}", rng.choice(DEPTS))
                .replace("{worknote}", rng.choice(WORKNOTES)).replace("{visit}", rng.choice(VISIT))
                .replace("{inhosp}", rng.choice(IN_HOSP)).replace("{time}", rng.choice(TIMES))
                .replace("{other_s}", pron).replace("{their}", poss).replace("{other}", rng.choice(OTHERS)))
    if r < 0.34:
        return rng.choice(["my {t} {f} {n}", "routine {t} {f}, {n}", "had my {t} {f} and it {n}",
                           "the {t} {f} {n}", "went for a planned {t} {f}, it {n}"]).format(
            t=rng.choice(TESTS), f=rng.choice(FACILITY), n=rng.choice(NORMAL))
    t = rng.choice(HARD_T)
    pron, poss = rng.choice([("he", "his"), ("she", "her"), ("they", "their")])
    return (t.replace("{other_s}", pron).replace("{their}", poss).replace("{other}", rng.choice(OTHERS))
            .replace("{a}", rng.choice(WORRY_A[:6] + ["cancer", "a heart attack", "a stroke"]))
            .replace("{years}", rng.choice(YEARS)).replace("{n}", rng.choice(NEG_NOUNS))
            .replace("{role}", rng.choice(ROLES)).replace("{dept}", rng.choice(DEPTS))
            .replace("{worknote}", rng.choice(WORKNOTES)).replace("{visit}", rng.choice(VISIT))
            .replace("{inhosp}", rng.choice(IN_HOSP)).replace("{time}", rng.choice(TIMES)))


def benign_clause(rng):
    """A clause that is not serious, of any not-serious kind."""
    r = rng.random()
    if r < 0.4:
        return mild_clause(rng)
    if r < 0.55:
        return negation_clause(rng)
    if r < 0.65:
        return rng.choice(NEUTRAL)
    if r < 0.8:
        return rng.choice(LIFE)
    if r < 0.9:
        return resolved_clause(rng)
    return hedge_clause(rng)


def diary_clauses(rng):
    """A few benign sentences repeated, as a long daily diary reads: 'I had a
    mild headache today.' five times, or three sentences in turn."""
    base = [benign_clause(rng) for _ in range(rng.randint(1, 3))]
    n = rng.randint(3, 9)
    return [base[i % len(base)] for i in range(n)]


def join(rng, clauses):
    out = clauses[0]
    for c in clauses[1:]:
        sep = rng.choice([". ", ", ", " and ", "; ", " - ", ". ", ".  ", " but ", ", also ", "\n", ". "])
        if out.endswith((".", "!", "?", ":")) and sep[0] in ".,;":
            sep = " "
        out = out + sep + c
    return out


def emphatic(rng, core):
    """'i had a stroke' -> 'i did have a stroke', 'i fainted' -> 'i did faint' (sometimes)."""
    if rng.random() < 0.5:
        return core
    if core.startswith("i had "):
        return "i did have " + core[len("i had "):]
    for past, base in (("i fainted", "faint"), ("i collapsed", "collapse"), ("i passed out", "pass out"),
                       ("i took ", "take "), ("i went ", "go "), ("i was admitted", "get admitted")):
        if core.startswith(past):
            return "i did " + base + core[len(past):]
    return core


def serious_report(rng):
    cat, core = serious_clause(rng)
    mode = rng.random()
    clauses = [core]
    kind = "serious"
    if mode < 0.18:
        pass
    elif mode < 0.34:
        clauses.insert(rng.randrange(2), mild_clause(rng))
        kind = "serious+mild"
    elif mode < 0.45:
        clauses.insert(rng.randrange(2), rng.choice([negation_clause, negation_pair])(rng))
        kind = "serious+negation"
    elif mode < 0.52:
        clauses.append(rng.choice(FOLLOWUP))
        kind = "serious+followup"
    elif mode < 0.61:
        # Long: the event among up to 9 benign clauses (a window of a long
        # diary, where the event is a small part of the text).
        n = rng.randint(2, 9)
        clauses = [benign_clause(rng) for _ in range(n)]
        clauses.insert(rng.randrange(n + 1), core)
        kind = "serious+long"
    elif mode < 0.70:
        # A diary that repeats itself (a window of a long report), the event
        # somewhere in it.
        clauses = diary_clauses(rng)
        clauses.insert(rng.randrange(len(clauses) + 1), core)
        kind = "serious+diary"
    elif mode < 0.72:
        clauses = [rng.choice(NEUTRAL + ["felt fine in the morning", "was ok at first"]), "then " + core]
        kind = "serious+turn"
    elif mode < 0.75:
        lead = rng.choice(["not sure if this is related but", "not sure if it matters but", "I don't think it's the drug but",
                           "maybe unrelated but", "I didn't want to bother anyone but", "sorry to bother you but",
                           "probably nothing to do with the study but", "I'm worried because", "not sure if it's the pills but",
                           "I think", "I'm pretty sure", "the doctor thinks"])
        clauses = [lead + " " + core]
        if rng.random() < 0.4:
            clauses.insert(0, mild_clause(rng))
        kind = "serious+hedge"
    elif mode < 0.82:
        clauses = [mild_clause(rng) + rng.choice([", otherwise fine", ", other than that ok", " but nothing else",
                                                  ", nothing much"]),
                   rng.choice(["but ", "except ", "then ", "and then ", "though ", "oh and ", ""]) + core]
        kind = "serious+buried"
    elif mode < 0.91:
        # The event after text that is not serious (a negation of something
        # else, a mild symptom, a neutral line), often with a contrastive or
        # emphatic turn: "no fever. I did have a stroke on Monday though".
        lead = [rng.choice([negation_clause, negation_pair, mild_clause, negation_clause])(rng)
                for _ in range(rng.randint(1, 2))]
        core = emphatic(rng, core)
        r = rng.random()
        if r < 0.35:
            core = core + rng.choice([" though", ", though", " however", " unfortunately", " sadly"])
        elif r < 0.7:
            core = rng.choice(["but ", "however ", "although ", "except ", "but then ", "on the other hand "]) + core
        sep = ", " if core.startswith(("but", "however", "although", "except", "on the")) else ". "
        clauses = [join(rng, lead) + rng.choice([sep, sep, " ", "\n"]) + core]
        kind = "serious+after_benign"
    elif mode < 0.96:
        clauses = [core, rng.choice(["but I'm ok now", "I'm fine now", "it has settled now", "feeling better now",
                                     "home again now", "recovering now"])]
        kind = "serious+recovered"
    else:
        _, second = serious_clause(rng)
        clauses.append(second)
        kind = "serious+serious"
    return clauses, kind


def not_serious_report(rng):
    mode = rng.random()
    if mode < 0.14:
        return [mild_clause(rng)], "mild"
    if mode < 0.24:
        return [mild_clause(rng), mild_clause(rng)], "mild"
    if mode < 0.44:
        clauses = [rng.choice([negation_clause, negation_pair])(rng)]
        if rng.random() < 0.6:
            clauses.insert(rng.randrange(2), rng.choice([mild_clause, lambda r: r.choice(NEUTRAL)])(rng))
        if rng.random() < 0.3:
            clauses.append(negation_clause(rng))
        return clauses, "negation"
    if mode < 0.52:
        clauses = [rng.choice(NEUTRAL)]
        if rng.random() < 0.5:
            clauses.append(rng.choice(LIFE))
        return clauses, "neutral"
    if mode < 0.62:
        clauses = [worry_clause(rng)]
        if rng.random() < 0.3:
            clauses.insert(0, mild_clause(rng))
        return clauses, "worry"
    if mode < 0.69:
        return [hedge_clause(rng)] + ([rng.choice(NEUTRAL)] if rng.random() < 0.3 else []), "hedge"
    if mode < 0.78:
        return [resolved_clause(rng)] + ([mild_clause(rng)] if rng.random() < 0.2 else []), "resolved"
    if mode < 0.86:
        clauses = [hard_negative_clause(rng)]
        if rng.random() < 0.4:
            clauses.insert(rng.randrange(2), mild_clause(rng))
        return clauses, "hard_negative"
    if mode < 0.95:
        return diary_clauses(rng), "diary"
    n = rng.randint(3, 10)
    return [benign_clause(rng) for _ in range(n)], "long"


def keyboard_mash(rng):
    words = []
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        if r < 0.4:
            row = rng.choice(KEYROWS)
            s = rng.randrange(len(row) - 3)
            w = row[s: s + rng.randint(3, len(row) - s)]
        elif r < 0.7:
            w = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10)))
        elif r < 0.93:
            w = rng.choice("abcdefghijklmnopqrstuvwxyz") * rng.randint(3, 14)
        else:
            w = str(rng.randint(0, 10**rng.randint(1, 9)))
        words.append(w)
    return " ".join(words)


def out_of_scope_report(rng):
    r = rng.random()
    if r < 0.25:
        return keyboard_mash(rng), "nonsense"
    if r < 0.37:
        s = rng.randrange(len(LOREM) - 2)
        return " ".join(LOREM[s: s + rng.randint(1, 12)]), "lorem"
    if r < 0.50:
        g = rng.choice(GREETINGS)
        if rng.random() < 0.3:
            g = g + " " + rng.choice(GREETINGS)
        return g, "greeting"
    if r < 0.68:
        if rng.random() < 0.3:
            return fill(rng, rng.choice(["{tech} {broken}", "{tech} {broken}, please help", "{tech} {broken} again",
                                         "hi, {tech} {broken}", "{tech} {broken} since {weekday}"])), "off_topic"
        return fill(rng, rng.choice(OFFTOPIC)), "off_topic"
    lang = rng.choice(list(FOREIGN))
    parts = rng.sample(FOREIGN[lang], rng.randint(1, min(2, len(FOREIGN[lang]))))
    text = ". ".join(parts).replace("{x}", rng.choice(FOREIGN_X.get(lang, [""])))
    return text, "language_" + lang


# ---------------------------------------------------------------------------
# Surface noise, shared by all labels so none of it leaks the label.
# ---------------------------------------------------------------------------
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
    if rng.random() < 0.15:
        text = add_typo(rng, text)
    if rng.random() < 0.25:
        text = text.replace("'", "")
    r = rng.random()
    if r < 0.3:
        text = text.lower()
    elif r < 0.34:
        text = text.upper()
    elif r < 0.85:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.35 and text[-1] not in ".!?":
        text = text + rng.choice([".", ".", "!", "!!", "?", "..."])
    return text


def fragment(rng):
    """The tail of a benign clause, as when a long report is read as windows
    that start mid-sentence."""
    words = join(rng, [benign_clause(rng) for _ in range(2)]).split()
    return " ".join(words[rng.randrange(len(words)):])


def make_report(rng, label):
    if label == 2:
        text, kind = out_of_scope_report(rng)
        if rng.random() < 0.3:
            text = surface(rng, text)
        return re.sub(r"[ \t]+", " ", text).strip(), kind
    clauses, kind = serious_report(rng) if label == 1 else not_serious_report(rng)
    if rng.random() < 0.3:
        clauses.insert(0, rng.choice(OPENERS).rstrip(":.,-").strip() if rng.random() < 0.3 else rng.choice(OPENERS))
    if rng.random() < 0.25:
        clauses.append(rng.choice(CLOSERS))
    if rng.random() < 0.1:
        clauses.insert(0, fragment(rng))
    r = rng.random()
    if r < 0.06:
        clauses.insert(rng.randrange(len(clauses) + 1), rng.choice(["I'm {age}", "at {age} years old", "age {age}",
                                                                    "I am {age} years old", "{age} year old"]))
    elif r < 0.12:
        clauses.insert(rng.randrange(len(clauses) + 1), rng.choice(["Dr {name} said to report it", "saw Dr {name}",
                                                                    "nurse {name} asked me to write this",
                                                                    "Dr {name} knows"]))
    elif r < 0.15 and label == 1:
        clauses.append(rng.choice(CLINICAL_TAIL))
    elif r < 0.16 and label == 0:
        clauses.append(rng.choice(["details to follow", "reported to the sponsor", "site informed"]))
    text = clauses[0]
    for c in clauses[1:]:
        if text.endswith((":", ",", "-")) or text.lower() in ("so", "ok so"):
            text = text + " " + c
        else:
            text = join(rng, [text, c])
    text = fill(rng, text)
    text = re.sub(r"[ \t]+", " ", text).strip()
    return surface(rng, text), kind


def split_of(text):
    bucket = int(hashlib.sha256(text.lower().encode("utf-8")).hexdigest(), 16) % 100
    if bucket < 75:
        return "train"
    if bucket < 85:
        return "val"
    return "test"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--per-class", type=int, default=6000, help="serious and not-serious texts each")
    ap.add_argument("--out-of-scope", type=int, default=1600, help="out-of-scope texts")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "data", "sae", "corpus.jsonl"))
    args = ap.parse_args()

    rng = random.Random(args.seed)
    seen = set()
    rows = []
    want = {0: args.per_class, 1: args.per_class, 2: args.out_of_scope}
    counts = {0: 0, 1: 0, 2: 0}
    attempts = 0
    while any(counts[k] < want[k] for k in want):
        attempts += 1
        if attempts > 200 * sum(want.values()):
            raise SystemExit(f"could not generate enough unique texts: {counts}")
        label = min((k for k in want if counts[k] < want[k]), key=lambda k: counts[k] / want[k])
        text, kind = make_report(rng, label)
        key = text.lower()
        if not text or key in seen:
            continue
        seen.add(key)
        counts[label] += 1
        rows.append({"text": text, "label": label, "kind": kind, "split": split_of(text)})

    out = os.path.normpath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    by_split = {}
    for r in rows:
        by_split.setdefault(r["split"], [0, 0, 0])[r["label"]] += 1
    print(f"wrote {len(rows)} rows to {out}")
    for s in ("train", "val", "test"):
        n0, n1, n2 = by_split.get(s, [0, 0, 0])
        print(f"  {s:5s}: {n0 + n1 + n2:5d} (not_serious {n0}, serious {n1}, out_of_scope {n2})")


if __name__ == "__main__":
    main()
