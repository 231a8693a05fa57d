//! CodePipeline's image definition files, the hand-off between a build and an ECS
//! deploy: `imagedefinitions.json` (`[{"name": ..., "imageUri": ...}]`, for ECS
//! standard deployments) and `imageDetail.json` (`{"ImageURI": ...}`, for ECS
//! blue/green through CodeDeploy). Read and written as CodePipeline does.

use serde::{Deserialize, Serialize};

/// A malformed image definition file, or a container it lacks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct ImageDefsError {
    /// The file, as named by the caller.
    pub file: String,
    /// What is wrong (with the line and column of a JSON error).
    pub reason: String,
}

/// One entry of `imagedefinitions.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDefinition {
    /// The container name in the task definition.
    pub name: String,
    /// The image for it.
    #[serde(rename = "imageUri")]
    pub image_uri: String,
}

/// `imagedefinitions.json`: an image per container name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImageDefinitions(pub Vec<ImageDefinition>);

/// `imageDetail.json`: the one image of a blue/green deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDetail {
    /// The image.
    #[serde(rename = "ImageURI")]
    pub image_uri: String,
}

fn error(file: &str, reason: impl Into<String>) -> ImageDefsError {
    ImageDefsError {
        file: file.to_owned(),
        reason: reason.into(),
    }
}

fn check_uri(file: &str, what: &str, uri: &str) -> Result<(), ImageDefsError> {
    if uri.trim().is_empty() || uri.contains(char::is_whitespace) {
        return Err(error(file, format!("{what}: {uri:?} is not an image URI")));
    }
    Ok(())
}

impl ImageDefinitions {
    /// Reads `imagedefinitions.json`: a non-empty array, names unique and non-empty.
    pub fn parse(file: &str, text: &str) -> Result<ImageDefinitions, ImageDefsError> {
        let defs: ImageDefinitions = serde_json::from_str(text).map_err(|e| {
            error(
                file,
                format!("{e}; expected [{{\"name\": \"...\", \"imageUri\": \"...\"}}]"),
            )
        })?;
        if defs.0.is_empty() {
            return Err(error(file, "no image definition in the array"));
        }
        for (i, d) in defs.0.iter().enumerate() {
            if d.name.trim().is_empty() {
                return Err(error(file, format!("[{i}].name: empty")));
            }
            check_uri(file, &format!("[{i}].imageUri"), &d.image_uri)?;
            if defs.0[..i].iter().any(|o| o.name == d.name) {
                return Err(error(
                    file,
                    format!("[{i}].name: container {:?} is listed twice", d.name),
                ));
            }
        }
        Ok(defs)
    }

    /// The file's text, as CodePipeline writes it (one line).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The image for container `name`: the entry of that name, or the only entry
    /// when the file has one (a single-container service need not repeat its
    /// container's name).
    pub fn image_for(&self, name: &str) -> Option<&str> {
        match self.0.as_slice() {
            [only] => Some(&only.image_uri),
            all => all
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.image_uri.as_str()),
        }
    }
}

impl ImageDetail {
    /// Reads `imageDetail.json`.
    pub fn parse(file: &str, text: &str) -> Result<ImageDetail, ImageDefsError> {
        let detail: ImageDetail = serde_json::from_str(text)
            .map_err(|e| error(file, format!("{e}; expected {{\"ImageURI\": \"...\"}}")))?;
        check_uri(file, "ImageURI", &detail.image_uri)?;
        Ok(detail)
    }

    /// The file's text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
