"""English: the same texts, for contacts who asked for English."""

SMS_PREFIX = "[Bidao] "
"""The signature every SMS starts with."""
SENTENCE_END = "."
LIST_SEPARATOR = "; "

TEMPLATES: dict[str, str] = {
    "ticket_call": "[Bidao] ${resident} (${place}, phone ${phone}) pressed the call key. "
    "Please call or visit. Ticket ${ticket}.",
    "ticket_call_repeat": "[Bidao] ${resident} (${place}, phone ${phone}) pressed the call key "
    "again (${presses} times, the first ${minutes} min ago); nobody has accepted yet. "
    "Ticket ${ticket}.",
    "ticket_still_waiting": "[Bidao] The call of ${resident} (${place}, phone ${phone}) "
    "${minutes} min ago is still not accepted; it has also gone to the next responder. You can "
    "still accept it. Ticket ${ticket}.",
    "ticket_informed": "[Bidao] ${resident} (${place}) has called the village secretary. "
    "For your information. Ticket ${ticket}.",
    "ticket_escalated_no_answer": "[Bidao] ${resident} (${place}, phone ${phone}) pressed the "
    "call key ${minutes} min ago; the previous responder did not answer. It is now yours. "
    "Ticket ${ticket}.",
    "ticket_escalated_not_accepted": "[Bidao] ${resident} (${place}, phone ${phone}) pressed the "
    "call key ${minutes} min ago and nobody has accepted. It is now yours. Ticket ${ticket}.",
    "ticket_escalated_declined": "[Bidao] ${resident} (${place}, phone ${phone}) pressed the "
    "call key ${minutes} min ago; ${previous} cannot go. It is now yours. Ticket ${ticket}.",
    "ticket_escalated_unreachable": "[Bidao] ${resident} (${place}, phone ${phone}) just pressed "
    "the call key; the previous responder cannot be reached now. It is now yours. "
    "Ticket ${ticket}.",
    "ticket_not_arrived": "[Bidao] ${resident} (${place}, ${phone}) called ${called_minutes} min "
    "ago; ${owner} (${owner_phone}) accepted ${minutes} min ago and has not arrived. Press 1 "
    "in the call to take it over. Ticket ${ticket}.",
    "ticket_taken": "[Bidao] Ticket ${ticket} was accepted by ${owner}; you need not go.",
    "ticket_accepted": "[Bidao] Ticket ${ticket} is yours: ${resident}, ${place}, ${phone}. "
    "Hold green on their box on arrival; tell the administrator when resolved.",
    "ticket_accepted_link": "[Bidao] Ticket ${ticket} is yours: ${resident}, ${place}, "
    "${phone}. Hold green on their box on arrival. Report: ${link}",
    "ticket_pressed_again_accepted": "[Bidao] ${resident} (${place}, phone ${phone}) pressed the "
    "call key again ${minutes} min after you accepted and is still waiting for you. Please go "
    "now. Ticket ${ticket}.",
    "ticket_pressed_again_on_site": "[Bidao] ${resident} (${place}, phone ${phone}) pressed the "
    "call key again ${minutes} min after you arrived. Please go back or call. Ticket ${ticket}.",
    "ticket_reassigned_to_you": "[Bidao] Ticket ${ticket} was handed to you by ${previous}: "
    "${resident}, ${place}, phone ${phone}. Please go now.",
    "ticket_reassigned_sms": "[Bidao] Ticket ${ticket} handed to you by ${previous}: ${resident}, "
    "${place}, ${phone}. Hold green on their box on arrival; tell the administrator when resolved.",
    "ticket_reassigned_sms_link": "[Bidao] Ticket ${ticket} handed to you by ${previous}: "
    "${resident}, ${place}, ${phone}. Hold green on their box on arrival. ${link}",
    "ticket_taken_over": "[Bidao] You took over ticket ${ticket} from ${previous}: ${resident}, "
    "${place}, ${phone}. Hold green on their box on arrival; tell the administrator when resolved.",
    "ticket_taken_over_link": "[Bidao] You took over ticket ${ticket} from ${previous}: "
    "${resident}, ${place}, ${phone}. Hold green on their box on arrival. ${link}",
    "ticket_reassigned_away": "[Bidao] Ticket ${ticket} was handed to ${owner} "
    "(phone ${owner_phone}), who now has it.",
    "ticket_cancelled_by_resident": "[Bidao] ${resident} (${place}) cancelled the call. "
    "Please call back on ${phone} to confirm they are well. Ticket ${ticket}.",
    "ticket_cancelled_no_phone": "[Bidao] ${resident} (${place}) cancelled the call. They have "
    "no phone on record: please visit or ask the family whether they are well. Ticket ${ticket}.",
    "ticket_overdue": "[Bidao] Ticket ${ticket} (${place}) is past its deadline. Please supervise.",
    "ticket_review": "[Bidao] ${resident} (${place}, phone ${phone}) is not satisfied with "
    "ticket ${ticket} (handled by ${owner}). Please follow up.",
    "ticket_access": "[Bidao] Ticket ${ticket}: key safe code at ${resident}'s home ${key_safe}; "
    "health notes: ${health}. For the visit only; do not forward.",
    "family_called": "[Bidao] ${resident} just pressed the call key at home (${place}); the "
    "village responders are being called. Ticket ${ticket}.",
    "family_accepted": "[Bidao] ${owner} (phone ${owner_phone}) has taken ${resident}'s call "
    "and is on the way to ${place}. Ticket ${ticket}.",
    "family_arrived": "[Bidao] ${owner} has arrived at ${resident}'s home (${place}). "
    "Ticket ${ticket}.",
    "family_resolved": "[Bidao] ${resident}'s call has been resolved (by ${owner}). "
    "Ticket ${ticket}.",
    "digest": "[Bidao] ${count} reminders: ${items}",
    "digest_same": "${text} (the same reminder ${count} times)",
    "not_recorded": "not recorded",
    "voice_menu": "Press 1 to accept and go, 2 if you cannot go and it should be passed on, "
    "9 to hear this again.",
    "voice_menu_take_over": "Press 1 to take this ticket over and go, 9 to hear this again.",
    "voice_menu_owner": "Press 1 to confirm, 9 to hear this again.",
    "voice_accepted": "You have accepted. Please go now; the resident is told help is coming. "
    "An SMS will tell you how to report progress. When you arrive, hold the green key on the "
    "resident's box to record it.",
    "voice_you_own": "This ticket is yours and the resident is still waiting. Please go now. "
    "When you arrive, hold the green key on the resident's box.",
    "voice_taken_over": "The ticket is now yours. Please go now; an SMS follows. When you "
    "arrive, hold the green key on the resident's box.",
    "voice_owner_ack": "Thank you. When you arrive, hold the green key on the resident's box "
    "to record it.",
    "voice_taken": "This ticket was accepted by ${owner}; you need not go.",
    "voice_passed_on": "All right, it is passed on to the next person.",
    "voice_no_input": "No key was pressed. Goodbye.",
    "voice_closed": "This ticket is closed. Thank you.",
    "voice_connecting": "Connecting you to the resident now, please hold.",
    "device_unassigned_call": "[Bidao] Call box ${device} called for help but has no "
    "household, so nobody responsible was told. Please check at once.",
    "device_unknown_household_call": "[Bidao] Call box ${device} called for help but its "
    "household ${household} does not exist; nobody responsible was told. Please check.",
    "device_call_failed": "[Bidao] Call box ${device} of ${resident} (${place}) called for "
    "help but no ticket could be opened; nobody may have been told. Call the resident now.",
    "device_offline": "[Bidao] The call box at ${resident}'s home has had no signal for "
    "${hours} hours. Please help check its power and network.",
    "device_back_online": "[Bidao] The call box at ${resident}'s home has a signal again "
    "(after ${hours} hours without).",
    # -- the water watch (issue 13) -----------------------------------------------------
    "no_water_alarm": "[Bidao] Water alarm: ${resident} (${place}, ${phone}) has used no "
    "water, pressed no key from ${since} to ${now}: ${hours} h, nights not counted. Call or "
    "visit now. Ticket ${ticket}.",
    "no_water_alarm_morning": "[Bidao] Water alarm: ${resident} (${place}, ${phone}) usually "
    "uses water by ${usual}; today none by ${now}, and no water or key since ${since}. Call "
    "or visit now. Ticket ${ticket}.",
    "leak_alarm": "[Bidao] Water alarm: the meter of ${resident} (${place}, ${phone}) has "
    "run non-stop since ${since} (${hours} h): a leak, or a fall in the shower. Call or visit "
    "now. Ticket ${ticket}.",
    "no_water_alarm_escalated": "[Bidao] The no-water alarm for ${resident} (${place}, phone "
    "${phone}) went out ${minutes} min ago and nobody has taken it. It is now yours to check. "
    "Ticket ${ticket}.",
    "leak_alarm_escalated": "[Bidao] The continuous-flow alarm for ${resident} (${place}, phone "
    "${phone}) went out ${minutes} min ago and nobody has taken it. It is now yours to check. "
    "Ticket ${ticket}.",
    "no_water_all_clear": "[Bidao] Water is being used again at ${resident}'s home (${place}) "
    "at ${now}: the water alarm is over. Ticket ${ticket}.",
    "no_water_all_clear_key": "[Bidao] ${resident} (${place}) pressed a key on the box at "
    "${now}: the water alarm is over. Ticket ${ticket}.",
    "no_water_all_clear_answer": "[Bidao] ${resident} (${place}) answered the safety call at "
    "${now} and pressed 1: all right. The water alarm is over. Ticket ${ticket}.",
    "no_water_all_clear_away": "[Bidao] ${resident}'s home (${place}) is marked away until "
    "${until}: the water alarm is over. Ticket ${ticket}.",
    "leak_all_clear": "[Bidao] The meter at ${resident}'s home (${place}) stopped running at "
    "${now}: the continuous-flow alarm is over. Ticket ${ticket}.",
    "alarm_accepted": "[Bidao] Ticket ${ticket} (water alarm, ${resident}) is yours to check: "
    "${place}, ${phone}. Tell the administrator what you found.",
    "alarm_accepted_link": "[Bidao] Ticket ${ticket} (water alarm, ${resident}) is yours to "
    "check: ${place}, ${phone}. Report here: ${link}",
    "alarm_reassigned_sms": "[Bidao] Ticket ${ticket} (water alarm, ${resident}) handed to you "
    "by ${previous}: ${place}, ${phone}. Tell the administrator what you found.",
    "alarm_reassigned_sms_link": "[Bidao] Ticket ${ticket} (water alarm, ${resident}) handed to "
    "you by ${previous}: ${place}, ${phone}. Report here: ${link}",
    "alarm_taken_over": "[Bidao] You took over ticket ${ticket} (water alarm, ${resident}) from "
    "${previous}: ${place}, ${phone}. Tell the administrator what you found.",
    "alarm_taken_over_link": "[Bidao] You took over ticket ${ticket} (water alarm, ${resident}) "
    "from ${previous}: ${place}, ${phone}. Report here: ${link}",
    "alarm_not_arrived": "[Bidao] Water alarm for ${resident} (${place}, ${phone}): ${owner} "
    "(${owner_phone}) took it ${minutes} min ago and has not arrived. Press 1 in the call to "
    "take it over. Ticket ${ticket}.",
    "alarm_family_accepted": "[Bidao] ${owner} (phone ${owner_phone}) has taken the water alarm "
    "for ${resident} and is going to ${place} to check. Ticket ${ticket}.",
    "alarm_family_resolved": "[Bidao] The water alarm for ${resident} has been dealt with "
    "(by ${owner}). Ticket ${ticket}.",
    "water_away_reminder": "[Bidao] ${resident} (${place}) was away until ${until}; by "
    "${now} no water is used at home. Please check they are back safely, or ask the "
    "secretary to mark them away again.",
    "water_watch_blind": "[Bidao] The water meter at ${resident}'s home (${place}) has had no "
    "signal since ${since}: the water watch is blind for now. Please keep an eye on them.",
    "water_watch_restored": "[Bidao] The water meter at ${resident}'s home (${place}) has a "
    "signal again since ${now}: the water watch is back.",
    "water_first_use_today": "[Bidao] Today's water: ${resident} (${place}) first used water "
    "today at ${first_use}.",
    "water_ask_resident": "Hello, this is Bidao's safety service calling ${resident}. No water "
    "has been used at your home from ${since} until now: ${hours} hours, nights not counted. "
    "Are you all right?",
    "water_ask_resident_morning": "Hello, this is Bidao's safety service calling ${resident}. "
    "You usually use water by ${usual}; today none has been used at your home yet. Are you "
    "all right?",
    "voice_menu_water_ask": "If you are all right, press 1. If you are away from home, press "
    "2: we will note you away for ${away_days} days and not ask meanwhile; using water at home "
    "ends it. To hear this again, press 9. With no answer within ${minutes} minutes, someone "
    "will be asked to come and check on you.",
    "voice_water_away": "Noted: you are away for ${away_days} days. Using water at home again "
    "ends it. Have a safe trip.",
    "voice_water_ok": "Thank you, we have noted that you are all right.",
    "voice_menu_alarm": "Press 1 if you will go and check, 2 if you cannot and it should be "
    "passed on, 9 to hear this again.",
    "voice_alarm_accepted": "You have taken it. Please call or visit now. An SMS will tell you "
    "how to report what you found.",
    # Device health: to the installers of the household's area.
    "health_box_offline": "[Bidao] The call box ${device} at ${resident}'s home (${place}) "
    "has had no signal since ${since}; the resident cannot call for help. Please check "
    "power and network.",
    "health_box_offline_ok": "[Bidao] The call box ${device} at ${resident}'s home (${place}) "
    "has a signal again (none from ${since} to ${until}).",
    "health_meter_offline": "[Bidao] The water meter ${device} at ${resident}'s home "
    "(${place}) has sent no data since ${since}; the water watch cannot judge. Please check "
    "its battery and network.",
    "health_meter_offline_ok": "[Bidao] The water meter ${device} at ${resident}'s home "
    "(${place}) sends data again (none from ${since} to ${until}).",
    "health_box_low_battery": "[Bidao] The call box ${device} at ${resident}'s home "
    "(${place}) has had a low battery since ${since}. Please replace it soon.",
    "health_box_low_battery_ok": "[Bidao] The call box ${device} at ${resident}'s home "
    "(${place}) has a good battery again (low from ${since} to ${until}).",
    "health_meter_low_battery": "[Bidao] The water meter ${device} at ${resident}'s home "
    "(${place}) has had a low battery since ${since}. Please replace it soon.",
    "health_meter_low_battery_ok": "[Bidao] The water meter ${device} at ${resident}'s home "
    "(${place}) has a good battery again (low from ${since} to ${until}).",
    "health_box_tamper": "[Bidao] The call box ${device} at ${resident}'s home (${place}) "
    "reported at ${since} that its case was opened or moved. Please go and look.",
    "health_box_tamper_ok": "[Bidao] The call box ${device} at ${resident}'s home (${place}): "
    "the case alarm has ended (${since} to ${until}).",
    "health_meter_tamper": "[Bidao] The water meter ${device} at ${resident}'s home "
    "(${place}) reported at ${since} that it was tampered with. Please go and look.",
    "health_meter_tamper_ok": "[Bidao] The water meter ${device} at ${resident}'s home "
    "(${place}): the tamper alarm has ended (${since} to ${until}).",
    "health_box_power_loss": "[Bidao] The call box ${device} at ${resident}'s home "
    "(${place}) has had no mains power since ${since} and runs on its battery. Please check "
    "the power.",
    "health_box_power_loss_ok": "[Bidao] The call box ${device} at ${resident}'s home "
    "(${place}) has mains power again (none from ${since} to ${until}).",
    "health_meter_power_loss": "[Bidao] The water meter ${device} at ${resident}'s home "
    "(${place}) has had no power since ${since}. Please check the power.",
    "health_meter_power_loss_ok": "[Bidao] The water meter ${device} at ${resident}'s home "
    "(${place}) has power again (none from ${since} to ${until}).",
    # Device health: to the family of a resident living alone (call boxes only).
    "health_family_offline": "[Bidao] The call box at ${resident}'s home (${place}) has had "
    "no signal since ${since}, so a key press cannot call for help. Its maintainers are "
    "told; please phone ${resident} meanwhile.",
    "health_family_offline_ok": "[Bidao] The call box at ${resident}'s home (${place}) has a "
    "signal again (none from ${since} to ${until}); its key can call for help again.",
    "health_family_low_battery": "[Bidao] The call box at ${resident}'s home (${place}) has "
    "had a low battery since ${since}. Its maintainers are told to replace it.",
    "health_family_low_battery_ok": "[Bidao] The call box at ${resident}'s home (${place}) "
    "has a good battery again (low from ${since} to ${until}).",
    "health_family_tamper": "[Bidao] The call box at ${resident}'s home (${place}) reported "
    "at ${since} that its case was opened or moved. Its maintainers are told; please phone "
    "${resident}.",
    "health_family_tamper_ok": "[Bidao] The call box at ${resident}'s home (${place}): the "
    "case alarm has ended (${since} to ${until}).",
    "health_family_power_loss": "[Bidao] The call box at ${resident}'s home (${place}) has "
    "had no mains power since ${since} and runs on battery; maybe a power cut. Its "
    "maintainers are told; please phone ${resident}.",
    "health_family_power_loss_ok": "[Bidao] The call box at ${resident}'s home (${place}) "
    "has mains power again (none from ${since} to ${until}).",
}
