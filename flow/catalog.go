package flow

import (
	"net/http"
	"strings"

	"golang.org/x/text/language"
)

// languages are the page languages shipped, the first being the default.
var languages = []string{"en", "de", "fr"}

// langMatcher picks one of languages for a browser's Accept-Language.
var langMatcher = func() language.Matcher {
	tags := make([]language.Tag, 0, len(languages))
	for _, l := range languages {
		tags = append(tags, language.MustParse(l))
	}
	return language.NewMatcher(tags)
}()

// pageLang picks the page language from the Accept-Language header.
func pageLang(r *http.Request) string {
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return languages[0]
	}
	_, i, conf := langMatcher.Match(tags...)
	if conf == language.No {
		return languages[0]
	}
	return languages[i]
}

// lookup returns the text of key in lang. A key naming a flow kind, like
// finish.oauth.heading, falls back to the key without it, finish.heading;
// a text missing in lang falls back to English.
func lookup(lang, key string) string {
	keys := []string{key}
	if parts := strings.Split(key, "."); len(parts) == 3 {
		keys = append(keys, parts[0]+"."+parts[2])
	}
	for _, l := range []string{lang, languages[0]} {
		for _, k := range keys {
			if s, ok := catalog[l][k]; ok {
				return s
			}
		}
	}
	return ""
}

// frRetry tells a French user that the bot knows and they may try again.
const frRetry = "Nous avons prévenu {bot}. Vous pouvez réessayer depuis votre conversation."

// catalog holds the pages' texts by language and key. In a text, {bot} is
// the bot's name and {minutes} the lifetime of the number, like
// "10 minutes". Message pages use KIND.heading, KIND.message and KIND.hint.
var catalog = map[string]map[string]string{
	"en": {
		"bot":           "the bot",
		"minutes.one":   "1\u00a0minute",
		"minutes.other": "{n}\u00a0minutes",

		"continue.site.heading":  "Continue to your task",
		"continue.site.message":  "Your chat with {bot} sent you here to finish a task on this site.",
		"continue.site.button":   "Continue",
		"continue.oauth.heading": "Sign in to continue",
		"continue.oauth.message": "Your chat with {bot} sent you here to sign in, " +
			"so that it can act for you.",
		"continue.oauth.button":    "Continue to sign-in",
		"continue.payment.heading": "Continue to payment",
		"continue.payment.message": "Your chat with {bot} sent you here to pay " +
			"on a secure checkout page.",
		"continue.payment.button": "Continue to payment",
		"continue.for":            "This link was made for {user}. If that is not you, close this page.",
		"continue.hint": "When you are done, you will get a number to paste into your chat. " +
			"Continue only if you opened this link from your own chat.",

		"finish.heading":         "You're done",
		"finish.oauth.heading":   "You're signed in",
		"finish.payment.heading": "Payment complete",
		"finish.message":         "Paste this number into your chat with {bot}:",
		"finish.hint": "It works once and expires in {minutes}. Do not share it with anyone. " +
			"You can close this page afterwards.",
		"finish.copy":     "Copy number",
		"finish.copied":   "Copied",
		"finish.selected": "Number selected: copy it with your device's Copy command.",
		"finish.select":   "Tap or click the number to select it.",

		"done.heading":        "You're done",
		"done.message":        "Go back to your chat with {bot}: it carries on there.",
		"shown.heading":       "Number already shown",
		"shown.message":       "For your safety, the number is shown only once.",
		"shown.hint":          "If you have not pasted it yet, ask {bot} for a new link.",
		"pending.heading":     "Almost there",
		"pending.message":     "We are waiting for your payment to be confirmed. This can take a moment.",
		"pending.hint":        "This page refreshes by itself. Keep it open to get your number.",
		"in_progress.heading": "Not finished yet",
		"in_progress.message": "This task is still open. Finish it in the window where you started it.",
		"in_progress.hint":    "Or open the link from your chat again.",

		"pending.oauth.message": "You are signed in. We are waiting for the sign-in " +
			"service to answer. This can take a moment.",

		"link_invalid.heading": "This link does not work",
		"link_invalid.message": "The link is incomplete or was changed.",
		"link_invalid.hint":    "Ask {bot} for a new link.",
		"link_expired.heading": "This link has expired",
		"link_expired.message": "For your safety, links work for a short time only.",
		"link_expired.hint":    "Ask {bot} for a new link.",
		"link_used.heading":    "This link was already used",
		"link_used.message":    "Each link works in one browser only, for the person it was sent to.",
		"link_used.hint":       "If it was meant for you, ask {bot} for a new link.",
		"superseded.heading":   "A newer link was sent",
		"superseded.message":   "This link was replaced by a newer one.",
		"superseded.hint":      "Use the latest link in your chat with {bot}.",
		"not_bound.heading":    "Open the link from your chat",
		"not_bound.message":    "This page belongs to a task that was started in another browser.",
		"not_bound.hint":       "Open the link {bot} sent you, in the browser you want to use.",
		"expired.heading":      "This task has expired",
		"expired.message":      "It was not finished in time.",
		"expired.hint":         "Ask {bot} to start again.",
		"declined.heading":     "Sign-in was cancelled",
		"declined.message":     "You did not grant access, so nothing was shared.",
		"declined.hint":        "We let {bot} know. You can ask it to try again.",
		"cancelled.heading":    "Payment cancelled",
		"cancelled.message":    "You left the checkout, and nothing was charged.",
		"cancelled.hint":       "We let {bot} know. You can ask it to try again.",
		"failed.heading":       "This did not work",
		"failed.message":       "The task could not be completed.",
		"failed.hint":          "We let {bot} know. You can ask it to try again.",
		"finished.heading":     "Already finished",
		"finished.message":     "This task was finished before.",
		"finished.hint":        "Go back to your chat with {bot}.",
		"not_found.heading":    "Page not found",
		"not_found.message":    "There is nothing at this address.",
		"not_found.hint":       "Check the link in your chat.",
		"no_flow.heading":      "Nothing to continue",
		"no_flow.message":      "This task is over, or was never started here.",
		"no_flow.hint":         "Ask {bot} for a new link.",
		"bad_request.heading":  "Something is wrong with this request",
		"bad_request.message":  "The request could not be understood.",
		"bad_request.hint":     "Start again from the link in your chat.",
		"busy.heading":         "Too many tries",
		"busy.message":         "Too many links were opened from here in a short time.",
		"busy.hint":            "Wait a minute, then open the link again.",
		"unavailable.heading":  "Please try again",
		"unavailable.message":  "The service is busy or briefly unavailable.",
		"unavailable.hint":     "Wait a moment, then reload this page.",
		"error.heading":        "Something went wrong",
		"error.message":        "An unexpected error occurred on our side.",
		"error.hint":           "Start again from the link in your chat.",
	},
	"de": {
		"bot":           "dem Bot",
		"minutes.one":   "1\u00a0Minute",
		"minutes.other": "{n}\u00a0Minuten",

		"continue.site.heading": "Weiter zur Aufgabe",
		"continue.site.message": "Ihr Chat mit {bot} hat Sie hierher geschickt, " +
			"damit Sie auf dieser Website eine Aufgabe abschließen.",
		"continue.site.button":   "Weiter",
		"continue.oauth.heading": "Anmelden, um fortzufahren",
		"continue.oauth.message": "Ihr Chat mit {bot} hat Sie hierher geschickt, " +
			"damit Sie sich anmelden und den Zugriff erlauben.",
		"continue.oauth.button":    "Weiter zur Anmeldung",
		"continue.payment.heading": "Weiter zur Zahlung",
		"continue.payment.message": "Ihr Chat mit {bot} hat Sie hierher geschickt, " +
			"damit Sie auf einer sicheren Zahlungsseite bezahlen.",
		"continue.payment.button": "Weiter zur Zahlung",
		"continue.for": "Dieser Link wurde für {user} erstellt. " +
			"Wenn Sie das nicht sind, schließen Sie diese Seite.",
		"continue.hint": "Danach erhalten Sie einen Code, den Sie in Ihren Chat einfügen. " +
			"Fahren Sie nur fort, wenn Sie diesen Link aus Ihrem eigenen Chat geöffnet haben.",

		"finish.heading":         "Geschafft",
		"finish.oauth.heading":   "Sie sind angemeldet",
		"finish.payment.heading": "Zahlung abgeschlossen",
		"finish.message":         "Fügen Sie diesen Code in Ihren Chat mit {bot} ein:",
		"finish.hint": "Er gilt nur einmal und läuft in {minutes} ab. " +
			"Geben Sie ihn an niemanden weiter. Danach können Sie diese Seite schließen.",
		"finish.copy":     "Code kopieren",
		"finish.copied":   "Kopiert",
		"finish.selected": "Code markiert: Kopieren Sie ihn mit der Kopierfunktion Ihres Geräts.",
		"finish.select":   "Tippen oder klicken Sie auf den Code, um ihn zu markieren.",

		"done.heading":  "Geschafft",
		"done.message":  "Kehren Sie zu Ihrem Chat mit {bot} zurück; dort geht es weiter.",
		"shown.heading": "Code bereits angezeigt",
		"shown.message": "Zu Ihrer Sicherheit wird der Code nur einmal angezeigt.",
		"shown.hint": "Falls Sie ihn noch nicht eingefügt haben, fordern Sie im Chat mit {bot} " +
			"einen neuen Link an.",
		"pending.heading": "Fast geschafft",
		"pending.message": "Wir warten auf die Bestätigung Ihrer Zahlung. " +
			"Das kann einen Moment dauern.",
		"pending.hint": "Diese Seite aktualisiert sich automatisch. " +
			"Lassen Sie sie geöffnet, um Ihren Code zu erhalten.",
		"in_progress.heading": "Noch nicht abgeschlossen",
		"in_progress.message": "Diese Aufgabe ist noch offen. " +
			"Schließen Sie sie in dem Fenster ab, in dem Sie sie begonnen haben.",
		"in_progress.hint": "Oder öffnen Sie den Link aus Ihrem Chat erneut.",

		"pending.oauth.message": "Sie sind angemeldet. Wir warten auf die Antwort des " +
			"Anmeldedienstes. Das kann einen Moment dauern.",

		"link_invalid.heading": "Dieser Link funktioniert nicht",
		"link_invalid.message": "Der Link ist unvollständig oder wurde verändert.",
		"link_invalid.hint":    "Fordern Sie im Chat mit {bot} einen neuen Link an.",
		"link_expired.heading": "Dieser Link ist abgelaufen",
		"link_expired.message": "Aus Sicherheitsgründen gelten Links nur kurze Zeit.",
		"link_expired.hint":    "Fordern Sie im Chat mit {bot} einen neuen Link an.",
		"link_used.heading":    "Dieser Link wurde bereits verwendet",
		"link_used.message": "Jeder Link funktioniert nur in einem Browser und nur für die Person, " +
			"an die er geschickt wurde.",
		"link_used.hint": "Falls er für Sie bestimmt war, fordern Sie im Chat mit {bot} " +
			"einen neuen Link an.",
		"superseded.heading": "Es gibt einen neueren Link",
		"superseded.message": "Dieser Link wurde durch einen neueren ersetzt.",
		"superseded.hint":    "Verwenden Sie den neuesten Link aus Ihrem Chat mit {bot}.",
		"not_bound.heading":  "Öffnen Sie den Link aus Ihrem Chat",
		"not_bound.message": "Diese Seite gehört zu einer Aufgabe, " +
			"die in einem anderen Browser begonnen wurde.",
		"not_bound.hint": "Öffnen Sie den Link aus Ihrem Chat mit {bot} in dem Browser, " +
			"den Sie verwenden möchten.",
		"expired.heading":  "Diese Aufgabe ist abgelaufen",
		"expired.message":  "Sie wurde nicht rechtzeitig abgeschlossen.",
		"expired.hint":     "Beginnen Sie im Chat mit {bot} von vorn.",
		"declined.heading": "Anmeldung abgebrochen",
		"declined.message": "Sie haben den Zugriff nicht erlaubt; " +
			"es wurden keine Daten weitergegeben.",
		"declined.hint":       "Wir haben es {bot} mitgeteilt. Sie können es dort erneut versuchen.",
		"cancelled.heading":   "Zahlung abgebrochen",
		"cancelled.message":   "Sie haben die Zahlungsseite verlassen; es wurde nichts abgebucht.",
		"cancelled.hint":      "Wir haben es {bot} mitgeteilt. Sie können es dort erneut versuchen.",
		"failed.heading":      "Das hat nicht geklappt",
		"failed.message":      "Die Aufgabe konnte nicht abgeschlossen werden.",
		"failed.hint":         "Wir haben es {bot} mitgeteilt. Sie können es dort erneut versuchen.",
		"finished.heading":    "Bereits abgeschlossen",
		"finished.message":    "Diese Aufgabe wurde bereits abgeschlossen.",
		"finished.hint":       "Kehren Sie zu Ihrem Chat mit {bot} zurück.",
		"not_found.heading":   "Seite nicht gefunden",
		"not_found.message":   "Unter dieser Adresse gibt es nichts.",
		"not_found.hint":      "Prüfen Sie den Link in Ihrem Chat.",
		"no_flow.heading":     "Hier gibt es nichts fortzusetzen",
		"no_flow.message":     "Diese Aufgabe ist beendet oder wurde hier nie begonnen.",
		"no_flow.hint":        "Fordern Sie im Chat mit {bot} einen neuen Link an.",
		"bad_request.heading": "Mit dieser Anfrage stimmt etwas nicht",
		"bad_request.message": "Die Anfrage konnte nicht verarbeitet werden.",
		"bad_request.hint":    "Beginnen Sie erneut mit dem Link aus Ihrem Chat.",
		"busy.heading":        "Zu viele Versuche",
		"busy.message":        "Von hier aus wurden in kurzer Zeit zu viele Links geöffnet.",
		"busy.hint":           "Warten Sie eine Minute und öffnen Sie den Link dann erneut.",
		"unavailable.heading": "Bitte versuchen Sie es erneut",
		"unavailable.message": "Der Dienst ist ausgelastet oder kurz nicht erreichbar.",
		"unavailable.hint":    "Warten Sie einen Moment und laden Sie die Seite dann neu.",
		"error.heading":       "Etwas ist schiefgelaufen",
		"error.message":       "Bei uns ist ein unerwarteter Fehler aufgetreten.",
		"error.hint":          "Beginnen Sie erneut mit dem Link aus Ihrem Chat.",
	},
	// French puts a no-break space before a colon.
	"fr": {
		"bot":           "le bot",
		"minutes.one":   "1\u00a0minute",
		"minutes.other": "{n}\u00a0minutes",

		"continue.site.heading": "Continuer vers votre tâche",
		"continue.site.message": "Votre conversation avec {bot} vous a envoyé ici " +
			"pour terminer une tâche sur ce site.",
		"continue.site.button":   "Continuer",
		"continue.oauth.heading": "Connectez-vous pour continuer",
		"continue.oauth.message": "Votre conversation avec {bot} vous a envoyé ici " +
			"pour vous connecter et autoriser l'accès.",
		"continue.oauth.button":    "Continuer vers la connexion",
		"continue.payment.heading": "Continuer vers le paiement",
		"continue.payment.message": "Votre conversation avec {bot} vous a envoyé ici " +
			"pour payer sur une page de paiement sécurisée.",
		"continue.payment.button": "Continuer vers le paiement",
		"continue.for": "Ce lien a été créé pour {user}. " +
			"Si ce n’est pas vous, fermez cette page.",
		"continue.hint": "Ensuite, vous obtiendrez un code à coller dans votre conversation. " +
			"Ne continuez que si vous avez ouvert ce lien depuis votre propre conversation.",

		"finish.heading":         "C'est terminé",
		"finish.oauth.heading":   "Connexion réussie",
		"finish.payment.heading": "Paiement effectué",
		"finish.message":         "Collez ce code dans votre conversation avec {bot}\u00a0:",
		"finish.hint": "Il n'est valable qu'une fois et expire dans {minutes}. " +
			"Ne le communiquez à personne. Vous pourrez ensuite fermer cette page.",
		"finish.copy":   "Copier le code",
		"finish.copied": "Copié",
		"finish.selected": "Code sélectionné\u00a0: copiez-le avec la fonction Copier " +
			"de votre appareil.",
		"finish.select": "Touchez ou cliquez sur le code pour le sélectionner.",

		"done.heading":  "C'est terminé",
		"done.message":  "Retournez à votre conversation avec {bot}\u00a0: la suite se passe là-bas.",
		"shown.heading": "Code déjà affiché",
		"shown.message": "Pour votre sécurité, le code n'est affiché qu'une seule fois.",
		"shown.hint": "Si vous ne l'avez pas encore collé, demandez un nouveau lien " +
			"dans votre conversation avec {bot}.",
		"pending.heading": "Presque terminé",
		"pending.message": "Nous attendons la confirmation de votre paiement. " +
			"Cela peut prendre un moment.",
		"pending.hint": "Cette page se met à jour toute seule. " +
			"Gardez-la ouverte pour obtenir votre code.",
		"in_progress.heading": "Pas encore terminé",
		"in_progress.message": "Cette tâche est toujours en cours. " +
			"Terminez-la dans la fenêtre où vous l'avez commencée.",
		"in_progress.hint": "Ou rouvrez le lien depuis votre conversation.",

		"pending.oauth.message": "Vous êtes connecté. Nous attendons la réponse du " +
			"service de connexion. Cela peut prendre un moment.",

		"link_invalid.heading": "Ce lien ne fonctionne pas",
		"link_invalid.message": "Le lien est incomplet ou a été modifié.",
		"link_invalid.hint":    "Demandez un nouveau lien dans votre conversation avec {bot}.",
		"link_expired.heading": "Ce lien a expiré",
		"link_expired.message": "Pour votre sécurité, les liens ne sont valables que peu de temps.",
		"link_expired.hint":    "Demandez un nouveau lien dans votre conversation avec {bot}.",
		"link_used.heading":    "Ce lien a déjà été utilisé",
		"link_used.message": "Chaque lien ne fonctionne que dans un seul navigateur, " +
			"pour la personne à qui il a été envoyé.",
		"link_used.hint": "S'il vous était destiné, demandez un nouveau lien " +
			"dans votre conversation avec {bot}.",
		"superseded.heading": "Un lien plus récent a été envoyé",
		"superseded.message": "Ce lien a été remplacé par un lien plus récent.",
		"superseded.hint":    "Utilisez le dernier lien de votre conversation avec {bot}.",
		"not_bound.heading":  "Ouvrez le lien depuis votre conversation",
		"not_bound.message":  "Cette page appartient à une tâche commencée dans un autre navigateur.",
		"not_bound.hint": "Ouvrez le lien de votre conversation avec {bot} " +
			"dans le navigateur que vous souhaitez utiliser.",
		"expired.heading":  "Cette tâche a expiré",
		"expired.message":  "Elle n'a pas été terminée à temps.",
		"expired.hint":     "Recommencez depuis votre conversation avec {bot}.",
		"declined.heading": "Connexion annulée",
		"declined.message": "Vous n'avez pas autorisé l'accès\u00a0: " +
			"aucune donnée n'a été partagée.",
		"declined.hint":       frRetry,
		"cancelled.heading":   "Paiement annulé",
		"cancelled.message":   "Vous avez quitté la page de paiement\u00a0: rien n'a été débité.",
		"cancelled.hint":      frRetry,
		"failed.heading":      "Cela n'a pas fonctionné",
		"failed.message":      "La tâche n'a pas pu être terminée.",
		"failed.hint":         frRetry,
		"finished.heading":    "Déjà terminé",
		"finished.message":    "Cette tâche a déjà été terminée.",
		"finished.hint":       "Retournez à votre conversation avec {bot}.",
		"not_found.heading":   "Page introuvable",
		"not_found.message":   "Il n'y a rien à cette adresse.",
		"not_found.hint":      "Vérifiez le lien dans votre conversation.",
		"no_flow.heading":     "Rien à poursuivre",
		"no_flow.message":     "Cette tâche est terminée, ou n'a jamais été commencée ici.",
		"no_flow.hint":        "Demandez un nouveau lien dans votre conversation avec {bot}.",
		"bad_request.heading": "Cette demande pose problème",
		"bad_request.message": "La demande n'a pas pu être traitée.",
		"bad_request.hint":    "Recommencez avec le lien de votre conversation.",
		"busy.heading":        "Trop de tentatives",
		"busy.message":        "Trop de liens ont été ouverts depuis cet appareil en peu de temps.",
		"busy.hint":           "Attendez une minute, puis rouvrez le lien.",
		"unavailable.heading": "Veuillez réessayer",
		"unavailable.message": "Le service est surchargé ou momentanément indisponible.",
		"unavailable.hint":    "Patientez un instant, puis rechargez cette page.",
		"error.heading":       "Une erreur s'est produite",
		"error.message":       "Une erreur inattendue s'est produite de notre côté.",
		"error.hint":          "Recommencez avec le lien de votre conversation.",
	},
}
