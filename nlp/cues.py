"""Risk cues in one customer message: cancellation or switching threats, legal threats, safety
and security reports, public complaint threats, repeated contact and requests for a person.

Patterns run on lower-cased tokens (the shared pipeline has no lemmatizer), plus regexes
where a Matcher is clumsy ("3rd time", "called 5 times"). Most messages carry no cue at all, so
`CueDetector.screen` first looks for candidates on the tokenizer's output alone (the token
patterns without their part-of-speech conditions, which can only find more): a message with
none needs no parse, and gets the same empty answer it would after one. A match only counts when the parse
says it is meant: it is dropped when a negation attaches to the cue or to a verb governing it
("I'm not going to cancel"), when it sits in an if-clause ("if it ever gets hacked"), when it
is a how/can-I question about the procedure ("how do I cancel?"), or when it is a joke
("I'll sue 😂")."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Iterable

from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span, Token
from spacy.vocab import Vocab

from nlp.text import mask_surrogates
from nlp.vocabulary import CUE_FAMILIES

FAMILIES = CUE_FAMILIES  # re-exported: the detector reports cues in this order


@dataclass(frozen=True)
class Cue:
    """One risk cue: its family and the evidence span (character offsets into the message)."""

    family: str
    text: str
    start: int
    end: int


# Word sets for the token patterns below, named there with "@".
_SETS: dict[str, str] = {
    "SUBJ": "i we i'm im",
    "INTENT": "'m m am are 're will 'll ll gon na gonna going to want wanna would 'd d like need have 've ve just"
              " really definitely now seriously literally officially hereby do did not n't nt never shall",
    "CANCEL": "cancel cancelling canceling cancle cancell cancelin cancellin quit quitting unsubscribe",
    "CANCEL_ANY": "cancel cancelling canceling cancle cancell cancelled canceled close closing terminate terminating",
    "ACCOUNT": "account acount accounts acct subscription subscriptions membership contract contracts plan service"
               " services policy insurance broadband line package debit mortgage",
    "SWITCH": "switch switching swich port porting", "MOVE": "move moving take taking",
    "MOVABLE": "business custom money savings mortgage account accounts",
    "PROVIDER": "provider providers supplier suppliers bank banks network networks carrier carriers company"
                " companies insurer insurers isp",
    "PLANISH": "plan plans tariff bundle package mode billing email paper paperless monthly annual yearly app option"
               " options card account direct data sim esim fibre speed deal offer unlimited premium basic standard"
               " pro plus family version",
    "DONE": "fixed working resolved sorted solved repaired refunded arrived received heard paid answered replied"
            " credited reversed",
    "SMELL": "smell smells smelling smelled smelt whiff stink stinks",
    "VALUABLE": "card cards phone sim number identity details account password money wallet purse credentials id",
    "PLATFORM": "twitter x facebook fb reddit instagram insta tiktok youtube linkedin social socials trustpilot yelp"
                " tripadvisor google",
    "POST": "post posting put putting share sharing write writing blast blasting tweet tweeting expose exposing"
            " publish publishing plaster plastering take taking",
    "TELL": "tell telling contact contacting go going write writing send sending call calling email emailing take"
            " taking alert alerting",
    "BADQ": "1 one zero 0 half bad negative terrible awful scathing horrible honest poor",
    "HUMAN": "manager managers supervisor supervisors human humans person agent representative rep operator boss"
             " superior",
    "SPEAK": "speak speaking talk talking chat chatting",
    "HFILL": "to me us through a an the your ur ya real actual live proper human one of with over speak talk this it"
             " my case call immediately now senior",
}

# Token patterns, ";"-separated, in a small notation: "a|b" alternatives, "@SET", a trailing
# "?" for optional, "*N" for up to N repeats, "~N" for up to N tokens of any kind, PROPN for
# a proper noun, NAME for any noun that is not a plan or feature. A leading "!" marks a cue
# whose negation is the point ("won't renew", "not safe"): negation does not suppress it.
_PATTERNS: dict[str, str] = {
    "cancellation": "@SUBJ @INTENT*4 @CANCEL; @CANCEL_ANY my|our|the|this ~2 @ACCOUNT; please|pls|plz|just @CANCEL;"
                    " @CANCEL it|everything; unsubscribe|unsub me|us; @SWITCH over? to NAME; @SWITCH @PROVIDER;"
                    " @SWITCH|@MOVE over? to another|other|different|new|a ~1 @PROVIDER; port|porting|ported out|away;"
                    " port|porting my|our|the number; go|going|shop|shopping|look|looking|buy|buying elsewhere;"
                    " @MOVE|took my|our|the ~1 @MOVABLE elsewhere|away; @MOVE my|our|the ~1 @MOVABLE to them|another;"
                    " @MOVE my|our|the ~1 @MOVABLE to PROPN; go|going|shop|shopping|buy|buying somewhere else;"
                    " signed|sign|signing up with|to PROPN; done|finished|through with you|u|ya|y'all guys?;"
                    " done|finished|through with this|your @PROVIDER|app|service|platform;"
                    " leave|leaving|ditch|ditching|dump|dumping you|u|ya;"
                    " !@SUBJ? will|wo|do|are|'re|am|'m|shall|would|'d? not|n't|never be? renew|renewing|continuing",
    "legal": "to|in court; court case|action|claim; county court; dispute|disputing ~3 with my|the bank|card;"
             " raise|raising|file|filing|open|opening a dispute; report|reporting you|u",
    "safety": "@SMELL ~3 gas; gas ~2 @SMELL|leak|leaking; lips|face|throat|tongue ~2 swelling|swollen|tingling;"
              " burn|burned|burnt|burns my|his|her|their|myself|himself|herself|me|him|hand|arm|finger|face|skin;"
              " got|been|was|were|is burned|burnt|hurt|injured|electrocuted; is|was|are|were|started|keeps smoking;"
              " stopped|stop taking my? meds|medication|medicine; !not|n't safe|breathing;"
              " wrong medication|medicine|meds|dose|dosage|tablets|pills|prescription|drug|drugs;"
              " ran|run|runs|running out of my? medication|meds|medicine|insulin|oxygen|inhaler;"
              " !ca|can|could n't|not breathe|swallow;"
              " hard|struggling|unable|difficulty|trouble to? breathe|breathing|swallow",
    "security": "@VALUABLE ~3 stolen|stole; stolen|stole|steal|stealing my|our|the? @VALUABLE;"
                " took|taken|taking over my|our|the account; scam call|calls|text|texts|email|emails|message|link|site",
    "public_complaint": "@POST ~5 on|to|in @PLATFORM; @BADQ -? star|stars? review|reviews|rating; @BADQ -? star|stars;"
                        " go|goes|going|make viral; consumer ~1 column; @POST ~3 everywhere|online;"
                        " review|reviews ~4 everywhere|every; @TELL ~4 press|media|news|newspaper|newspapers|papers",
    "repeat_contact": "!still be|been|has|have|is|are|was|do|does|did? not|n't|never|nt been? @DONE;"
                      " still no refund|reply|response|answer|update|fix|payout|word|news|resolution|callback|money;"
                      " still broken|unresolved|outstanding",
    "human_request": "@SPEAK to|with ~2 @HUMAN; want|need|demand|request|get|give|transfer|put|connect|escalate"
                     " @HFILL*4 @HUMAN; real|actual|live|proper person|human|people|agent|humans|someone;"
                     " @HUMAN please|pls|plz|now|asap|immediately; can|could|would|will a|an @HUMAN;"
                     " someone|somebody senior|higher|competent; someone|somebody in charge; escalate this|it|me|my;"
                     " by|with someone|somebody else; @SPEAK to someone|somebody else;"
                     " escalated to someone|somebody|a|the|your",
}

# Phrases that are cues wherever they appear (negation and conditionals still apply).
_PHRASES: dict[str, str] = {
    "legal": "sue, suing, sued, sueing, lawyer, lawyers, attorney, attorneys, solicitor, solicitors, barrister,"
             " lawsuit, legal action, legal advice, legal proceedings, class action, small claims, ombudsman, fca,"
             " letter before action, ofcom, @ofcom, ofgem, ofwat, ico, information commissioner, trading standards,"
             " bbb, better business bureau, cfpb, ftc, fcc, regulator, regulators, tribunal, chargeback, chargebacks,"
             " charge back, charge-back, formal complaint, environmental health, my mp, independent adjudicator,"
             " deadlock letter",
    "safety": "gas leak, carbon monoxide, co alarm, on fire, caught fire, catch fire, catching fire, house fire,"
              " flames, fire hazard, burst into flames, sparks, sparking, smoke, smoky, electric shock, electrocuted,"
              " electrical shock, allergic reaction, anaphylaxis, anaphylactic, epipen, epi-pen, chest pain, seizure,"
              " chest pains, chest tightness, heart attack, unconscious, injured, injury, injuries, bleeding, insulin,"
              " burning smell, smell of burning, overdose, medication error, home oxygen, unsafe, dangerous, danger,"
              " hazard, hazardous, ambulance, paramedics, flooding, suicide, suicidal, kill myself, end my life,"
              " end it all, end it tonight, self harm, self-harm, hurt myself",
    "security": "hacked, hacker, hackers, hacking, compromised, data breach, phishing, phished, scammed, scammer,"
                " scammers, fraudster, fraudsters, fraudulent, fraud, identity theft, id theft, sim swap, sim swapped,"
                " sim-swap, safe account, account takeover, malware, spyware, unauthorised, unauthorized",
    "public_complaint": "trustpilot, yelp, tripadvisor, for everyone to see, tell everyone, telling everyone,"
                        " warn others, let everyone know, warn people, warn everyone, tell all my friends,"
                        " journalist, journalists, reporter, reporters, watchdog, my followers",
}

_ORD3 = r"(?:third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|umpteenth|nth|hundredth|\d*(?:3rd|[4-9]th|0th))"
_COUNT = r"(?:\d+|two|three|four|five|six|seven|eight|nine|ten|several|multiple|many|numerous|countless|so many)"
_NOT = r"(?:did ?n['’]?t|did not|do ?n['’]?t|do not|never|have ?n['’]?t|have not)"
_MONEY = r"(?:charges?|payments?|transactions?|purchases?|debits?|withdrawals?|transfers?|log-?ins?)"
# (family, regex, whether the negation is part of the cue)
_REGEXES: tuple[tuple[str, str, bool], ...] = (
    ("repeat_contact", rf"\b{_ORD3}\s+time\b(?!\s+(?:lucky|ordering|buying|using|booking|trying))", False),
    ("repeat_contact", rf"\b(?:second|2nd|{_ORD3})\s+(?:calls?|e-?mails?|messages?|dms?|texts?|letters?|chats?|"
                       r"tickets?|requests?|complaints?|contacts?|person|agent|department)\b", False),
    ("repeat_contact", r"\b(?:second|2nd)\s+time\s+(?:i|we)(?:\s*['’]?\w+)?\s+(?:call|writ|ask|contact|messag|"
                       r"e-?mail|chas|report|rais|text|reach|ring|phon|complain)\w*", False),
    ("repeat_contact", r"\b(?:called|rang|phoned|e-?mailed|written|wrote|messaged|asked|contacted|chased|texted|"
                       r"dm['’]?e?d|sent|told you|explained|reported|raised|complained|reached out|been in touch)\b"
                       rf"[^.?!\n]{{0,30}}?\b(?:twice|{_COUNT}\s+times)\b", False),
    ("repeat_contact", rf"\b{_COUNT}\s+(?:calls|e-?mails|messages|dms|tickets|chats|complaints|letters|texts)\b",
     False),
    ("repeat_contact", r"\b(?:again and again|over and over|time and (?:time )?again|time after time|yet again|"
                       r"for the (?:umpteenth|hundredth|millionth|nth) time|how many (?:more )?times (?:do|have|"
                       r"must|should|will|am) (?:i|we))\b", False),
    ("repeat_contact", r"\b(?:as|like) i (?:have |had |already |just )*(?:said|mentioned|explained|stated|told you|"
                       r"wrote)\b|\bi(?:['’]ve| have)? (?:already (?:told|explained|said|mentioned|given|provided|"
                       r"answered|sent (?:it|this|them|you))|just told you)\b", False),
    ("repeat_contact", r"\bevery (?:single )?(?:time|day|week|month) (?:i|we) (?:have to |need to |had to )?"
                       r"(?:call|contact|chase|ring|phone|write|e-?mail|message|get in touch)", False),
    ("repeat_contact", r"\b(?:i|we)(?: have to| had to)? keep (?:having to )?(?:call|contact|chas|ring|phon|"
                       rf"writ|e-?mail|messag|ask|explain|repeat)\w*|\btransferred {_COUNT} times\b", False),
    ("repeat_contact", r"\b(?:is ?n['’]?t|is not|not) (?:the|my) first (?:time|call|e-?mail|message|contact)\b",
     True),
    ("security", rf"\b(?:i|we)\s+{_NOT}\s+(?:make|made|authori[sz]ed?|approved?|recogni[sz]e|request(?:ed)?|"
                 rf"ask(?:ed)? for|spen[dt])\s+(?:\w+\s+){{0,3}}?{_MONEY}\b", True),
    ("security", rf"\b{_MONEY}\s+(?:that\s+)?(?:i|we)\s*(?:['’]m|am|are|['’]re|['’]ve|have)?\s*(?:{_NOT}|not)\s+"
                 r"(?:\w+\s+)?(?:make|made|making|authori[sz]\w*|recogni[sz]e|do|did)\b", True),
    ("security", r"\b(?:some ?(?:one|body)(?: else)?|a stranger|an? unknown (?:person|user|device))(?:\s*['’]s)?\s+"
                 r"(?:\w+\s+){0,2}?(?:logged|logging|log|signed|signing|accessed|accessing|using|used|changed|"
                 r"changing|hacked|stole|stolen|stealing|spent|spending|withdrew|transferred|reset|opened|got into|"
                 r"broke into|trying to (?:log|get|access|sign))\b", False),
    ("security", r"\b(?:password|e-?mail(?: address)?|pin|phone number|login details)\s+(?:was|were|has been|"
                 r"have been|got|had been)\s+(?:changed|reset)\b", False),
    ("safety", r"\b\d+\s?mg\b[^.?!\n]{0,40}\binstead of\b|\b(?:call(?:ed|ing)?|ring|rang) (?:999|911|112)\b", False),
    ("safety", r"\b(?:do ?n['’]?t|do not) want to (?:be here|live|be alive)(?: any ?more)?", True),
    ("safety", r"\b(?:got|get|getting|had) (?:a |an )?(?:electric(?:al)? )?shocks? (?:off|from)\b|"
               r"\bwater(?:['’]s| is)? (?:coming|pouring|gushing) (?:in|into|through)\b", False),
    ("public_complaint", r"\b\d[\d,.]*\s?[km]?\s+followers\b", False),
)

# Words that may not follow a cue ending with a given word ("smoke test", "human error").
_NOT_BEFORE: dict[tuple[str, str], frozenset[str]] = {
    ("safety", "smoke"): frozenset("test tests testing".split()),
    ("human_request", "human"): frozenset("error errors rights resources resource nature".split()),
    ("security", "fraud"): frozenset("team department dept unit prevention".split()),
    ("cancellation", "you"): frozenset("a an to alone with some my the be for in on know feedback".split()),
}

_NEGATIONS = frozenset({"not", "n't", "nt", "never", "no"})
# Dependencies through which a negation or hedge on a governing word still reaches the cue.
_CLIMB = frozenset("xcomp ccomp dobj pobj prep attr acomp oprd dative pcomp acl compound amod prt advmod auxpass"
                   " aux".split())
# Inside an if-clause the cue may also be its subject ("if a hacker gets in") or a conjunct.
_CONDITIONAL_CLIMB = (_CLIMB - {"ccomp"}) | {"nsubj", "nsubjpass", "conj"}
_REPORTING = frozenset("say said saying think thought mean meant plan planning intend intending going want wanted"
                       " threaten threatening threatened claim claimed believe asking ask asked".split())
_INTENT_NOUNS = frozenset("need needs intention intentions plan plans wish desire reason".split())
_OTHER_PARTY = frozenset({"you", "u", "they"})
_FIRST_PERSON = frozenset({"i", "we", "i'm", "im"})
_ALSO_NAMES = frozenset({"sue"})  # "Sue from billing said..."
_HEDGES = frozenset("probably maybe perhaps possibly might may".split())
_CANCEL_WORDS = frozenset(_SETS["CANCEL_ANY"].split())
_ONE_OFF = frozenset("order orders appointment appointments booking bookings reservation reservations flight flights"
                     " payment payments transfer card cards cheque delivery request ticket tickets trip table meeting"
                     " class lesson lessons session sessions".split())
_QUESTION_WORDS, _QUESTION_SUBJ = frozenset("how what when where which".split()), frozenset("i we it there".split())
_QUESTION_AUX = frozenset("can could may do does should will would is are am must".split())
_HYPOTHETICAL = re.compile(r"\b(?:hypothetically|in case|what if|suppose|supposing|imagine if)\b", re.I)
_JOKE = re.compile(r"\b(?:lol|lmao|rofl|jk|ha(?:ha)+|he(?:he)+)\b|[😂🤣😆😜😝]", re.I)
_JOKE_FAMILIES = frozenset({"cancellation", "legal", "public_complaint"})
_BARE_HUMAN = frozenset(_SETS["HUMAN"].split())
_BARE_OK = _BARE_HUMAN | frozenset("a an the real actual live please pls plz now asap immediately right just speak"
                                   " talk to with i want need get me your ur".split())


def _token_pattern(notation: str, *, screening: bool = False) -> list[dict]:
    """One Matcher pattern from the notation described above `_PATTERNS`. With `screening`,
    the part-of-speech conditions are dropped, so the pattern runs on an unparsed Doc and
    matches wherever the full pattern could (and sometimes where it cannot)."""
    pattern: list[dict] = []
    for item in notation.strip().lstrip("!").split():
        op = "?" if item.endswith("?") else "{0,%s}" % item.split("*")[1] if "*" in item else None
        item = item.rstrip("?").split("*")[0]
        if item.startswith("~"):
            spec: dict = {"OP": "{0,%s}" % item[1:]}
        elif item == "PROPN":
            spec = {} if screening else {"POS": "PROPN"}
        elif item == "NAME":
            spec = {"IS_ALPHA": True, "LENGTH": {">=": 2}, "LOWER": {"NOT_IN": _SETS["PLANISH"].split()}}
            if not screening:
                spec["POS"] = {"IN": ["PROPN", "NOUN"]}
        else:
            words = [w for alt in item.split("|") for w in (_SETS[alt[1:]].split() if alt[0] == "@" else [alt])]
            spec = {"LOWER": {"IN": [v for w in words for v in dict.fromkeys((w, w.replace("'", "’")))]}}
        pattern.append({**spec, "OP": op} if op else spec)
    return pattern


def _word_list(spec: dict) -> list[str]:
    """The words a token spec from `_token_pattern` accepts (none for a wildcard or POS slot)."""
    lower = spec.get("LOWER")
    return lower.get("IN", []) if isinstance(lower, dict) else []


def _anchor(pattern: list[dict]) -> frozenset[str] | None:
    """The words of one token every match of `pattern` has (None if there is none): of the
    required word-list tokens, the one with the fewest stop words, so that the set rarely
    occurs in messages without a cue ("cancel" rather than "i")."""
    required = [frozenset(words) for spec in pattern if "OP" not in spec and (words := _word_list(spec))]
    if not required:
        return None
    return min(required, key=lambda words: (len(words & STOP_WORDS) / len(words), len(words)))


def _has_negation(token: Token) -> bool:
    return any(c.dep_ == "neg" or (c.lower_ in _NEGATIONS and c.dep_ in ("det", "advmod")) for c in token.children)


def _subjects(token: Token) -> list[Token]:
    return [c for c in token.children if c.dep_ in ("nsubj", "nsubjpass")]


def _governors(token: Token) -> Iterable[Token]:
    """The cue's head word and the words governing it whose negation or hedge reaches it:
    "I'm not going to cancel" climbs from "cancel" to "going". A clause joined by "and" or
    "because" does not pass its negation on, nor does a verb whose subject is the company
    ("you didn't refund the unauthorised charges")."""
    for _ in range(8):
        yield token
        head = token.head
        if head is token or token.dep_ not in _CLIMB:
            return
        if token.dep_ == "ccomp" and head.lower_ not in _REPORTING:
            return
        if head.pos_ in ("NOUN", "PROPN") and head.lower_ not in _INTENT_NOUNS:
            return
        if any(s.lower_ in _OTHER_PARTY for s in _subjects(head)):
            return
        token = head


def _not_current_cancellation(span: Span) -> bool:
    """A cancellation the customer is not threatening now: one already done ("I cancelled it in
    May"), someone else's ("you cancelled my order", "she'd cancel it") or a one-off ("cancel my
    appointment"). "Can you cancel it" and "my wife is cancelling" count."""
    verbs = [t for t in span if t.lower_ in _CANCEL_WORDS]
    if any(v.tag_ in ("VBD", "VBN") or any(c.lower_ in ("did", "have", "'ve", "has", "had") for c in v.children)
           for v in verbs):
        return True
    subjects = _subjects(span.root)
    if subjects and not any(s.lower_ in _FIRST_PERSON | {"you", "u"} or
                            any(c.lower_ in ("my", "our") for c in s.children) for s in subjects):
        return True
    return any(c.dep_ in ("dobj", "nsubjpass") and c.lower_ in _ONE_OFF for v in verbs for c in v.children)


def _conditional(token: Token, sentence: Span, start_char: int) -> bool:
    """Whether the cue sits in an if/whether/in-case clause or a sentence marked hypothetical."""
    if _HYPOTHETICAL.search(sentence.text[: start_char - sentence.start_char]):
        return True
    for _ in range(8):
        for child in token.children:
            if child.dep_ == "mark" and child.lower_ in ("if", "whether"):
                return True
            if child.lower_ == "in" and any(g.lower_ == "case" for g in child.children):
                return True
        if token.head is token or token.dep_ not in _CONDITIONAL_CLIMB:
            return False
        token = token.head
    return False


def _inquiry(span: Span, sentence: Span) -> bool:
    """A how/what or can-I question about the procedure ("how do I cancel?"), not a threat."""
    before = [t.lower_ for t in sentence if t.i < span.root.i]
    if "how" in before:  # "I want to know how to close my account"
        return True
    if "?" not in sentence.text[span.end_char - sentence.start_char:]:
        return False
    return any(w in _QUESTION_WORDS for w in before) or any(
        a in _QUESTION_AUX and b in _QUESTION_SUBJ for a, b in zip(before, before[1:]))


class AnchoredMatchers:
    """Token patterns, one Matcher each, filed under their anchor words (`_anchor`): a Doc
    runs only the patterns whose anchor it contains. A spaCy Matcher costs about the same
    per pattern whether it matches or not, and most messages hold few anchors."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self._by_word: dict[str, list[Matcher]] = {}
        self._unanchored: list[Matcher] = []

    def add(self, key: str, pattern: list[dict]) -> None:
        matcher = Matcher(self.vocab)
        matcher.add(key, [pattern])
        anchor = _anchor(pattern)
        if anchor is None:
            self._unanchored.append(matcher)
        for word in anchor or ():
            self._by_word.setdefault(word, []).append(matcher)

    def for_doc(self, doc: Doc) -> list[Matcher]:
        """The Matchers whose patterns can match `doc` (each once)."""
        words = {token.lower_ for token in doc} & self._by_word.keys()
        found = {id(matcher): matcher for word in words for matcher in self._by_word[word]}
        return [*found.values(), *self._unanchored]


class CueDetector:
    """Finds risk cues in customer messages. The pipeline needs a tagger and a parser, as the
    shared one (`nlp.spacy_pipeline.load_pipeline`) has."""

    def __init__(self, nlp: Language | None = None) -> None:
        if nlp is None:
            from nlp.spacy_pipeline import load_pipeline
            nlp = load_pipeline()
        self.nlp = nlp
        # Each token pattern twice: as written, for parsed Docs, and without its part-of-speech
        # conditions, for screening unparsed ones (`screen`).
        self._patterns = AnchoredMatchers(nlp.vocab)
        self._screens = AnchoredMatchers(nlp.vocab)
        self._phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
        # Every word a token pattern, phrase or bare request names: a quote made of these
        # alone is the detector's own wording (see `is_literal`).
        vocabulary: set[str] = set(_BARE_OK)
        for family, notations in _PATTERNS.items():
            for keeps in (False, True):
                chosen = [n for n in notations.split(";") if n.strip().startswith("!") == keeps]
                for notation in chosen:
                    pattern = _token_pattern(notation)
                    self._patterns.add(family + ("!" if keeps else ""), pattern)
                    self._screens.add("screen", _token_pattern(notation, screening=True))
                    vocabulary.update(word for spec in pattern for word in _word_list(spec))
        for family, phrases in _PHRASES.items():
            docs = list(nlp.tokenizer.pipe(p.strip() for p in phrases.split(",")))
            self._phrases.add(family, docs)
            vocabulary.update(token.lower_ for doc in docs for token in doc)
        self.vocabulary = frozenset(vocabulary)
        self._regexes = [(family, re.compile(rx, re.I), keeps) for family, rx, keeps in _REGEXES]

    def detect(self, text: str) -> list[Cue]:
        """Risk cues in one customer message, at most one per family, in `FAMILIES` order."""
        return self.detect_many([text])[0]

    def detect_many(self, texts: Iterable[str]) -> list[list[Cue]]:
        """`detect` for many messages, parsed in batches with `nlp.pipe`."""
        texts = [t or "" for t in texts]
        # spaCy cannot hash lone surrogates; one replacement character each keeps the offsets.
        docs = self.nlp.pipe(mask_surrogates(t) for t in texts)
        return [[replace(c, text=t[c.start:c.end]) for c in self.detect_doc(doc)] for t, doc in zip(texts, docs)]

    def detect_doc(self, doc: Doc) -> list[Cue]:
        """Risk cues in a message already parsed by this detector's pipeline. Each family keeps
        its first match; matches of that family overlapping it widen the quoted evidence."""
        chosen: dict[str, Span] = {}
        for family, span, keeps in sorted(self._candidates(doc), key=lambda c: (c[1].start_char, -c[1].end_char)):
            if not self._counts(family, span, keeps):
                continue
            if family not in chosen:
                chosen[family] = span
            elif span.start_char < chosen[family].end_char:
                first = chosen[family]
                chosen[family] = doc.char_span(first.start_char, max(first.end_char, span.end_char),
                                               alignment_mode="expand") or first
        text = doc.text
        return [Cue(f, text[s.start_char:s.end_char], s.start_char, s.end_char) for f in FAMILIES
                if (s := chosen.get(f)) is not None]

    def is_literal(self, doc: Doc, cue: Cue) -> bool:
        """Whether a cue's quote is made only of the detector's own words, in lower case
        (its first word aside): "cancel my account", "lawyer". Such a quote cannot hold
        personal data, so it needs no redaction (or NER). A wildcard, a name, a number or
        a capital inside the quote makes it not literal."""
        span = doc.char_span(cue.start, cue.end, alignment_mode="expand")
        if span is None:
            return False
        return all(token.lower_ in self.vocabulary and (token.i == span.start or token.text == token.lower_)
                   for token in span if not token.is_space)

    def screen(self, doc: Doc) -> bool:
        """Whether a message may carry a cue, read from the tokens alone (`doc` needs no
        tagger or parser). False means `detect_doc` on the parsed message finds nothing."""
        if self._phrases(doc) or any(screen(doc) for screen in self._screens.for_doc(doc)):
            return True
        return any(
            doc.char_span(start, end, alignment_mode="expand") for _, start, end, _ in self._text_spans(doc.text))

    def _candidates(self, doc: Doc) -> Iterable[tuple[str, Span, bool]]:
        """Every pattern match as (family, span, whether its negation is part of the cue)."""
        strings = self.nlp.vocab.strings
        for matcher in self._patterns.for_doc(doc):
            for match_id, start, end in matcher(doc):
                key = strings[match_id]
                yield key.rstrip("!"), doc[start:end], key.endswith("!")
        for match_id, start, end in self._phrases(doc):
            yield strings[match_id], doc[start:end], False
        for family, start, end, keeps in self._text_spans(doc.text):
            span = doc.char_span(start, end, alignment_mode="expand")
            if span is not None and len(span):
                yield family, span, keeps

    def _text_spans(self, text: str) -> list[tuple[str, int, int, bool]]:
        """Regex matches and bare requests for a person, as character ranges."""
        spans = [(f, m.start(), m.end(), keeps) for f, rx, keeps in self._regexes for m in rx.finditer(text)]
        for chunk in re.finditer(r"\w[^.!?\n,;]*", text):  # "agent", "human. agent. person", "No. Manager."
            words = set(re.findall(r"[a-z]+", chunk.group().lower()))
            if words and words <= _BARE_OK and words & _BARE_HUMAN:
                spans.append(("human_request", chunk.start(), chunk.start() + len(chunk.group().rstrip()), False))
        return spans

    def _counts(self, family: str, span: Span, keeps_negation: bool) -> bool:
        """Whether a match is a real, current cue rather than negated, hypothetical or a joke."""
        doc = span.doc
        if span.end < len(doc) and doc[span.end].lower_ in _NOT_BEFORE.get((family, span[-1].lower_), ()):
            return False
        if any(t.lower_ in _ALSO_NAMES and t.is_title and t.pos_ != "VERB" for t in span):
            return False
        sentence, root = span.sent, span.root
        governors = list(_governors(root))
        if not keeps_negation and any(_has_negation(t) for t in governors):
            return False
        if family == "cancellation" and (_not_current_cancellation(span) or any(  # "I'll probably shop elsewhere"
                c.lower_ in _HEDGES for t in governors for c in t.children if c.dep_ in ("aux", "advmod"))):
            return False
        if _conditional(root, sentence, span.start_char):
            return False
        if family == "cancellation" and _inquiry(span, sentence):
            return False
        return not (family in _JOKE_FAMILIES and _JOKE.search(sentence.text))
