output "region" {
  description = "AWS region."
  value       = var.region
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = module.cluster.name
}

output "staging_service_name" {
  description = "Staging service (ECS controller, rolling)."
  value       = module.staging.service_name
}

output "prod_service_name" {
  description = "Production service (CODE_DEPLOY controller, blue/green)."
  value       = module.prod.service_name
}

output "ecr_repository_url" {
  description = "Where to push the image."
  value       = module.ecr.repository_url
}

output "ecr_repository_name" {
  description = "ECR repository name."
  value       = module.ecr.repository_name
}

output "codedeploy_app_name" {
  description = "CodeDeploy application of the production service."
  value       = module.prod.codedeploy_app_name
}

output "codedeploy_deployment_group_name" {
  description = "CodeDeploy deployment group of the production service."
  value       = module.prod.codedeploy_deployment_group_name
}

output "container_name" {
  description = "Container name in both task definitions."
  value       = local.container_name
}

output "container_port" {
  description = "Container port."
  value       = local.container_port
}

output "alb_dns_name" {
  description = "Production load balancer DNS name."
  value       = module.alb_prod.dns_name
}

output "staging_alb_dns_name" {
  description = "Staging load balancer DNS name."
  value       = module.alb_staging.dns_name
}
